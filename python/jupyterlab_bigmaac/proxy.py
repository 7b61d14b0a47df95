"""One browser connection's view of the shared agent.

Every connection numbers its requests as it likes; the agent sees server-wide
ids, so answers go back only to the connection that asked and two tabs never
cross. `initialize` is answered from the agent's cached result, and the agent's
lifecycle (`shutdown`, `exit`) belongs to the server, never to a browser.
Stats subscriptions belong to the connection that made them: only it may end
them, only subscribed connections get `stats/update`, and whatever is left is
unsubscribed when the connection closes, so a closed tab never keeps the
agent sampling fast.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from typing import Any, Callable

from . import jsonrpc
from .agent import Agent, AgentUnavailable

# Notifications a browser may not send: the server owns the agent's lifecycle
# and is the only source of kernel execution states.
BLOCKED_NOTIFICATIONS = {"initialized", "exit", "kernel/state"}
CANCEL_METHOD = "$/cancelRequest"
PROGRESS_METHOD = "$/progress"
SUBSCRIBE_METHOD = "stats/subscribe"
UNSUBSCRIBE_METHOD = "stats/unsubscribe"
STATS_UPDATE_METHOD = "stats/update"

# Unsubscribe requests sent for closed connections; held so they are not collected.
_releases: set[asyncio.Task[Any]] = set()

_session_numbers = itertools.count(1)


class AgentSession:
    """Routes one connection's messages to the agent and the answers back."""

    def __init__(self, agent: Agent, send: Callable[[str], None], log: logging.Logger) -> None:
        self.agent = agent
        self.send_text = send
        self.log = log
        self.number = next(_session_numbers)
        self._agent_ids: dict[Any, int] = {}  # client id -> agent id, while pending
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tokens: dict[str, Any] = {}  # agent-side progress token -> client token
        self._subscriptions: set[Any] = set()  # agent subscription ids this connection owns
        self._closed = False
        agent.add_listener(self._on_agent_notification)

    def close(self) -> None:
        self._closed = True
        self.agent.remove_listener(self._on_agent_notification)
        for task in list(self._tasks):
            task.cancel()
        for subscription_id in self._subscriptions:
            _release_later(self.agent, subscription_id, self.log)
        self._subscriptions.clear()

    def receive(self, text: str | bytes) -> None:
        """Handle one websocket frame without blocking the next one."""
        task = asyncio.ensure_future(self._handle(text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- from the browser ------------------------------------------------

    async def _handle(self, text: str | bytes) -> None:
        try:
            message = json.loads(text)
        except ValueError as error:
            self._send(jsonrpc.error_response(None, jsonrpc.PARSE_ERROR, f"Parse error: {error}"))
            return
        problem = _invalid_reason(message)
        if problem:
            request_id = message.get("id") if isinstance(message, dict) else None
            self._send(jsonrpc.error_response(request_id, jsonrpc.INVALID_REQUEST, problem))
            return
        if "method" not in message:
            return  # an answer to a request we never sent: nothing to do
        if "id" in message:
            await self._handle_request(message)
        else:
            await self._handle_notification(message)

    async def _handle_request(self, message: dict[str, Any]) -> None:
        client_id, method = message["id"], message["method"]
        if method == "initialize":
            await self._answer(client_id, self.agent.ensure_started)
        elif method == "shutdown":
            self._send(jsonrpc.response(client_id, None))
        elif method == UNSUBSCRIBE_METHOD and not self._owns(message.get("params")):
            self._send(jsonrpc.response(client_id, {"removed": False}))  # not ours to end
        else:
            await self._forward_request(client_id, method, message.get("params"))

    async def _handle_notification(self, message: dict[str, Any]) -> None:
        method, params = message["method"], message.get("params")
        if method in BLOCKED_NOTIFICATIONS:
            return
        if method == CANCEL_METHOD:
            agent_id = self._agent_ids.get((params or {}).get("id")) if isinstance(params, dict) else None
            if agent_id is None:
                return  # not one of this connection's pending requests
            params = {"id": agent_id}
        try:
            await self.agent.notify(method, params)
        except AgentUnavailable as error:
            self.log.warning("BigMaac: dropped notification %s: %s", method, error)

    async def _forward_request(self, client_id: Any, method: str, params: Any) -> None:
        params, token = self._rewrite_token(params)
        try:
            agent_id, future = await self.agent.request(method, params)
            self._agent_ids[client_id] = agent_id
            try:
                reply = await future
            finally:
                self._agent_ids.pop(client_id, None)
        except AgentUnavailable as error:
            self._send(jsonrpc.error_response(client_id, jsonrpc.AGENT_UNAVAILABLE, str(error)))
            return
        finally:
            if token is not None:
                self._tokens.pop(token, None)
        self._track_subscription(method, params, reply)
        reply = dict(reply)
        reply["id"] = client_id
        self._send(reply)

    def _owns(self, params: Any) -> bool:
        return isinstance(params, dict) and params.get("subscriptionId") in self._subscriptions

    def _track_subscription(self, method: str, params: Any, reply: dict[str, Any]) -> None:
        result = reply.get("result")
        if method == SUBSCRIBE_METHOD and isinstance(result, dict) and "subscriptionId" in result:
            if self._closed:  # the tab went away while subscribing
                _release_later(self.agent, result["subscriptionId"], self.log)
            else:
                self._subscriptions.add(result["subscriptionId"])
        elif method == UNSUBSCRIBE_METHOD and isinstance(params, dict):
            self._subscriptions.discard(params.get("subscriptionId"))

    async def _answer(self, client_id: Any, produce: Callable[[], Any]) -> None:
        try:
            result = await produce()
        except AgentUnavailable as error:
            self._send(jsonrpc.error_response(client_id, jsonrpc.AGENT_UNAVAILABLE, str(error)))
            return
        self._send(jsonrpc.response(client_id, result))

    def _rewrite_token(self, params: Any) -> tuple[Any, str | None]:
        """Give a progress token a server-wide name, so its progress reaches only us."""
        if not isinstance(params, dict) or params.get("workDoneToken") is None:
            return params, None
        client_token = params["workDoneToken"]
        agent_token = f"bigmaac-{self.number}-{json.dumps(client_token)}"
        self._tokens[agent_token] = client_token
        return {**params, "workDoneToken": agent_token}, agent_token

    # -- from the agent --------------------------------------------------

    def _on_agent_notification(self, message: dict[str, Any]) -> None:
        if message.get("method") == STATS_UPDATE_METHOD and not self._subscriptions:
            return  # this connection never asked for stats
        if message.get("method") == PROGRESS_METHOD:
            params = message.get("params")
            token = params.get("token") if isinstance(params, dict) else None
            if isinstance(token, str) and token in self._tokens:
                self._send({**message, "params": {**params, "token": self._tokens[token]}})
                return
            if isinstance(token, str) and token.startswith("bigmaac-"):
                return  # another connection's progress
        self._send(message)

    def _send(self, message: dict[str, Any]) -> None:
        if self._closed:
            return
        try:
            self.send_text(json.dumps(message, separators=(",", ":")))
        except Exception as error:  # the socket closed under us
            self.log.debug("BigMaac: could not send to a closed websocket: %s", error)


def _release_later(agent: Agent, subscription_id: Any, log: logging.Logger) -> None:
    """End a closed connection's subscription without making anyone wait for it."""
    release = asyncio.ensure_future(_unsubscribe(agent, subscription_id, log))
    _releases.add(release)
    release.add_done_callback(_releases.discard)


async def _unsubscribe(agent: Agent, subscription_id: Any, log: logging.Logger) -> None:
    try:
        _, future = await agent.request(UNSUBSCRIBE_METHOD, {"subscriptionId": subscription_id})
        await future
    except AgentUnavailable:
        pass  # an agent that died took its subscriptions with it
    except Exception as error:
        log.warning("BigMaac: could not end subscription %s: %s", subscription_id, error)


def _invalid_reason(message: Any) -> str:
    """Why `message` is not a JSON-RPC 2.0 request, notification or response."""
    if isinstance(message, list):
        return "Invalid Request: batches are not supported"
    if not isinstance(message, dict):
        return "Invalid Request: a message must be a JSON object"
    if message.get("jsonrpc") != "2.0":
        return 'Invalid Request: "jsonrpc" must be "2.0"'
    if "id" in message and not isinstance(message["id"], (str, int, type(None))):
        return "Invalid Request: id must be a string, a number or null"
    if isinstance(message.get("id"), bool):
        return "Invalid Request: id must be a string, a number or null"
    if "method" in message and not isinstance(message["method"], str):
        return "Invalid Request: method must be a string"
    if "method" not in message and not jsonrpc.is_response(message):
        return "Invalid Request: no method"
    return ""
