"""REST and websocket handlers under <base_url>/bigmaac/.

Every handler is authenticated and authorised through jupyter_server's own
mechanisms, on the auth resource "bigmaac".
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from pathlib import Path
from typing import Any, Callable

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketHandler

from . import __version__
from .agent import Agent
from .notebooks import InvalidToggle, normalise_path, notebook_toggles, validate_toggle
from .proxy import AgentSession
from .registry import kernel_registry
from .settings import BigMaac, resolve
from .swapdir import filesystem_type, nearest_existing, ram_filesystem

AUTH_RESOURCE = "bigmaac"
NOT_OURS_REASON = "this kernel was not started by the BigMaac provisioner"


class BigMaacAPIHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def bigmaac_agent(self) -> Agent:
        return self.settings["bigmaac_agent"]

    @property
    def bigmaac_config(self) -> BigMaac:
        return self.settings["bigmaac_config"]


class StatusHandler(BigMaacAPIHandler):
    """GET /bigmaac/status: is BigMaac usable here, and is the agent up."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        config = self.bigmaac_config
        # The user's file, the swap directory and its filesystem may be on NFS:
        # read them off the event loop. Reading changes nothing on disk.
        user, defaults, swap, library_found = await _in_thread(self._read_disk_state, config)
        self.finish(
            json.dumps(
                {
                    "version": __version__,
                    "library": str(config.library()),
                    "libraryFound": library_found,
                    "enabledByDefault": defaults.enabled,
                    "reason": defaults.reason,
                    "reasonCode": defaults.reason_code,
                    "warnings": defaults.warnings,
                    "swapDir": defaults.settings.swap_dir,
                    "swap": swap,
                    "minBigmaacSize": defaults.settings.min_bigmaac_size,
                    "settings": defaults.settings.to_json(),
                    "sources": defaults.sources,
                    "userSettings": user.to_json(),
                    "agent": {
                        **self.bigmaac_agent.status(),
                        "forwardsKernelState": self.settings["bigmaac_kernel_states"].enabled,
                        "policy": self.settings["bigmaac_policy"].status(),
                    },
                }
            )
        )


    def _read_disk_state(self, config: BigMaac) -> tuple[Any, Any, dict[str, Any], bool]:
        user = self.settings["bigmaac_user_settings"].read()
        defaults = resolve(config, user=user.kernel, warnings=user.problems, create_swap_dir=False)
        return user, defaults, swap_space(defaults.settings.swap_dir), config.library().is_file()


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    """Run blocking file-system work in the default executor."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(function, *args))


def swap_space(directory: str) -> dict[str, Any]:
    """The swap directory's filesystem: bytes free for us, its size, and whether it is RAM.

    A directory not made yet (kernels make it) is reported by the filesystem it
    will be made on. The numbers are null when not even that can be read.
    """
    space: dict[str, Any] = {"dir": directory, "free": None, "total": None, "fsType": None, "onRam": None}
    if not os.path.isabs(directory):
        return space
    path = nearest_existing(Path(directory))
    try:
        usage = os.statvfs(path)
    except OSError:
        return space
    ram = ram_filesystem(path)
    space.update(
        free=usage.f_bavail * usage.f_frsize,
        total=usage.f_blocks * usage.f_frsize,
        fsType=ram or filesystem_type(path),
        onRam=ram is not None,
    )
    return space


class KernelsHandler(BigMaacAPIHandler):
    """GET /bigmaac/kernels: every running kernel with its BigMaac state."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        kernels = []
        for model in self.kernel_manager.list_kernels():
            record = kernel_registry.get(model["id"])
            state: dict[str, Any] = (
                record.to_json()
                if record
                else {"enabled": False, "reason": NOT_OURS_REASON, "reasonCode": "not-provisioned"}
            )
            kernels.append({"id": model["id"], "name": model.get("name"), "bigmaac": state})
        self.finish(json.dumps({"kernels": kernels}))


class NotebooksHandler(BigMaacAPIHandler):
    """The per-notebook toggle registry, keyed by the notebook's API path.

    GET    /bigmaac/notebooks              every registered toggle
    GET    /bigmaac/notebooks?path=P       the toggle of P ({} when none)
    PUT    /bigmaac/notebooks?path=P       set it: {"enabled": bool, "min_bigmaac_size": "64M"}
    DELETE /bigmaac/notebooks?path=P       forget it (the saved metadata applies again)
    A change takes effect at the kernel's next start or restart.
    """

    def _path(self, required: bool = True) -> str | None:
        raw = self.get_query_argument("path", None)
        if raw is None and not required:
            return None
        try:
            return normalise_path(raw)
        except InvalidToggle as error:
            raise web.HTTPError(400, str(error), reason=_header_safe(str(error))) from None

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self._path(required=False)
        if path is None:
            toggles = notebook_toggles.all()
            notebooks = [{"path": p, "toggle": toggles[p]} for p in sorted(toggles)]
            self.finish(json.dumps({"notebooks": notebooks}))
            return
        self.finish(json.dumps({"path": path, "toggle": notebook_toggles.get(path) or {}}))

    @web.authenticated
    @authorized
    async def put(self) -> None:
        path = self._path()
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            raise web.HTTPError(400, "the body is not JSON", reason="the body is not JSON") from None
        try:
            toggle = validate_toggle(body)
            await _in_thread(notebook_toggles.set, path, toggle)  # an fsync'd write
        except InvalidToggle as error:
            raise web.HTTPError(400, str(error), reason=_header_safe(str(error))) from None
        self.finish(json.dumps({"path": path, "toggle": toggle}))

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        path = self._path()
        await _in_thread(notebook_toggles.remove, path)
        self.set_status(204)
        self.finish()


def _header_safe(text: str) -> str:
    """The reason phrase travels in the status line: one printable ASCII line."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:200]


class AgentWebSocketHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):  # type:ignore[misc]
    """WS /bigmaac/agent: the agent's JSON-RPC, one message per text frame."""

    auth_resource = AUTH_RESOURCE
    session: AgentSession | None = None

    def set_default_headers(self) -> None:
        """JupyterHandler's HTTP headers make no sense on a websocket."""

    async def pre_get(self) -> None:
        is_authorized = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "execute", AUTH_RESOURCE)
        )
        if not is_authorized:
            raise web.HTTPError(403)

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self.pre_get()
        await super().get(*args, **kwargs)

    def open(self, *args: Any, **kwargs: Any) -> None:  # type:ignore[override]
        super().open(*args, **kwargs)  # starts the keep-alive pings
        self.session = AgentSession(self.settings["bigmaac_agent"], self.write_message, self.log)

    def on_message(self, message: str | bytes) -> None:
        if self.session is not None:
            self.session.receive(message)

    def on_close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
