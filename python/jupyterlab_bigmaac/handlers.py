"""REST and websocket handlers under <base_url>/bigmaac/.

Every handler is authenticated and authorised through jupyter_server's own
mechanisms, on the auth resource "bigmaac".
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketHandler

from . import __version__
from .agent import Agent
from .proxy import AgentSession
from .registry import kernel_registry
from .settings import BigMaac, resolve

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
        defaults = resolve(config)
        self.finish(
            json.dumps(
                {
                    "version": __version__,
                    "library": str(config.library()),
                    "libraryFound": config.library().is_file(),
                    "enabledByDefault": defaults.enabled,
                    "reason": defaults.reason,
                    "reasonCode": defaults.reason_code,
                    "swapDir": defaults.settings.swap_dir,
                    "minBigmaacSize": defaults.settings.min_bigmaac_size,
                    "agent": self.bigmaac_agent.status(),
                }
            )
        )


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
