"""The jupyter_server extension: REST status, kernel states and the agent proxy."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from jupyter_client.provisioning.factory import KernelProvisionerFactory
from jupyter_server.extension.application import ExtensionApp

from .activity import KernelStateForwarder, KernelStateWatcher
from .agent import Agent
from .handlers import AgentWebSocketHandler, KernelsHandler, NotebooksHandler, StatusHandler
from .notebooks import InvalidToggle, ServerContext, normalise_path, notebook_toggles, set_server_context
from .policy import PolicySync
from .settings import BigMaac
from .user_settings import UserSettingsFile, default_settings_dir

PROVISIONER_NAME = "bigmaac-provisioner"  # the entry point in pyproject.toml
# What jupyter_server's contents manager emits after each rename, delete, ...
CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"
# The notebook toggle registry, under the server's Jupyter data directory.
TOGGLES_FILE = Path("bigmaac") / "notebook-toggles.json"


class BigMaacExtension(ExtensionApp):
    """Serves /bigmaac/, makes BigMaac the default provisioner, owns the agent."""

    name = "jupyterlab_bigmaac"

    def initialize_settings(self) -> None:
        # Parent is the server app so the same `c.BigMaac...` config the
        # provisioner sees (through the kernel manager) applies here too.
        config = BigMaac(parent=self.serverapp)
        self.agent = Agent(config.node(), log=self.log)
        self.kernel_states = KernelStateForwarder(self.agent, self.log)
        self.user_settings = UserSettingsFile(self._user_settings_dir())
        self.policy = PolicySync(self.agent, self.user_settings, self.log)
        self.settings.update(
            {
                "bigmaac_config": config,
                "bigmaac_agent": self.agent,
                "bigmaac_kernel_states": self.kernel_states,
                "bigmaac_user_settings": self.user_settings,
                "bigmaac_policy": self.policy,
            }
        )
        self._become_default_provisioner()
        notebook_toggles.persist_to(Path(self.serverapp.data_dir) / TOGGLES_FILE, self.log)
        # The provisioner runs in this process and reads notebook metadata
        # through the server's own contents manager.
        set_server_context(
            ServerContext(self.serverapp.root_dir, self.serverapp.contents_manager, self.user_settings)
        )
        # A toggle belongs to the notebook, not to its path: it moves with a
        # rename and goes with a delete, so a new notebook at an old path starts clean.
        self.serverapp.event_logger.add_listener(schema_id=CONTENTS_EVENTS, listener=self._contents_changed)

    async def _contents_changed(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        action = data.get("action")
        if action not in ("rename", "delete"):
            return
        try:
            path = normalise_path(data.get("path"))
            source = normalise_path(data.get("source_path")) if action == "rename" else None
        except InvalidToggle:
            return  # the root directory itself, or nothing a toggle could be under
        loop = asyncio.get_running_loop()
        try:
            if source is not None:
                count = await loop.run_in_executor(None, notebook_toggles.move, source, path)
                what = f"moved from {source} to {path}"
            else:
                count = await loop.run_in_executor(None, notebook_toggles.remove_tree, path)
                what = f"forgotten with {path}"
        except InvalidToggle as error:
            self.log.warning("BigMaac could not follow the %s of %s: %s", action, path, error)
            return
        if count:
            self.log.info("BigMaac: %d notebook toggle(s) %s", count, what)

    def _user_settings_dir(self) -> Path:
        # JupyterLab's own choice when it runs in this server (its
        # `user_settings_dir` trait), else where JupyterLab puts it by default.
        for apps in self.serverapp.extension_manager.extension_apps.values():
            for app in apps:
                directory = getattr(app, "user_settings_dir", None)
                if isinstance(directory, str) and directory:
                    return Path(directory)
        return default_settings_dir()

    def _become_default_provisioner(self) -> None:
        # jupyter_server reads only `jpserver_extensions` from the config.d files
        # a package installs, so the default provisioner is set here, before any
        # kernel starts. An admin's explicit choice (config or environment) wins.
        factory = KernelProvisionerFactory.instance(parent=self.serverapp)
        server_config = self.serverapp.config
        chosen = "KernelProvisionerFactory" in server_config and (
            "default_provisioner_name" in server_config.KernelProvisionerFactory
        )
        if chosen or os.environ.get(factory.default_provisioner_name_env):
            self.log.info(
                "BigMaac: kernels without a provisioner of their own use %r, as configured",
                factory.default_provisioner_name,
            )
            return
        factory.default_provisioner_name = PROVISIONER_NAME

    async def _start_jupyter_server_extension(self, serverapp) -> None:
        # Runs once the event loop exists: sample kernel states from then on.
        self.watcher = KernelStateWatcher(serverapp.kernel_manager, self.kernel_states, self.log)
        self.watcher.start()
        self.policy.start()

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            [
                (r"/bigmaac/status", StatusHandler),
                (r"/bigmaac/kernels", KernelsHandler),
                (r"/bigmaac/notebooks", NotebooksHandler),
                (r"/bigmaac/agent", AgentWebSocketHandler),
            ]
        )

    async def stop_extension(self) -> None:
        set_server_context(None)
        self.serverapp.event_logger.remove_listener(listener=self._contents_changed)
        watcher = getattr(self, "watcher", None)
        if watcher is not None:
            watcher.stop()
        self.policy.stop()
        await self.agent.stop()
