"""The jupyter_server extension: REST status, kernel states and the agent proxy."""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_client.provisioning.factory import KernelProvisionerFactory
from jupyter_server.extension.application import ExtensionApp

from .activity import KernelStateForwarder, KernelStateWatcher
from .agent import Agent
from .handlers import AgentWebSocketHandler, KernelsHandler, NotebooksHandler, StatusHandler
from .notebooks import ServerContext, notebook_toggles, set_server_context
from .policy import PolicySync
from .settings import BigMaac
from .user_settings import UserSettingsFile, default_settings_dir

PROVISIONER_NAME = "bigmaac-provisioner"  # the entry point in pyproject.toml
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
        watcher = getattr(self, "watcher", None)
        if watcher is not None:
            watcher.stop()
        self.policy.stop()
        await self.agent.stop()
