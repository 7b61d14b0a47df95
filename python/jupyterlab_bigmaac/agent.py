"""The server's one agent process: started on first use, restarted if it dies.

The agent is `node _bundled/bigmaac.js agent --parent-pid <server pid>`,
speaking JSON-RPC with Content-Length framing on stdio. This module owns the
process and request ids on that stdio; proxy.py maps browser connections
onto it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from typing import Any, Callable

from . import jsonrpc, paths
from . import __version__

# The agent protocol version this server was written for (docs/protocol.md).
PROTOCOL_VERSION = "1.1"
INITIALIZE_TIMEOUT = 15.0
STOP_TIMEOUT = 3.0
# A crash-looping agent is not respawned more often than this.
MIN_RESTART_INTERVAL = 1.0

NotificationListener = Callable[[dict[str, Any]], None]
StartListener = Callable[[], None]


class AgentUnavailable(Exception):
    """The agent cannot be started or died while a request was pending."""


class Agent:
    """One agent process and the JSON-RPC traffic on its stdio."""

    def __init__(self, node: str | None, log: logging.Logger | None = None) -> None:
        self.node = node
        self.log = log or logging.getLogger(__name__)
        self.state = "stopped"  # stopped | starting | running | failed
        self.error = ""
        self.starts = 0
        self.initialize_result: dict[str, Any] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: set[NotificationListener] = set()
        self._start_listeners: list[StartListener] = []
        self._start_lock = asyncio.Lock()
        self.last_start = 0.0  # time.monotonic() of the last start attempt
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle -------------------------------------------------------

    async def ensure_started(self) -> dict[str, Any]:
        """Start and initialize the agent if needed; return its InitializeResult."""
        if self.state == "running" and self.initialize_result is not None:
            return self.initialize_result
        async with self._start_lock:
            if self.state == "running" and self.initialize_result is not None:
                return self.initialize_result
            if self.state == "failed" and time.monotonic() - self.last_start < MIN_RESTART_INTERVAL:
                raise AgentUnavailable(self.error)
            self.last_start = time.monotonic()
            try:
                return await self._start()
            except AgentUnavailable as error:
                self.state, self.error = "failed", str(error)
                self.log.error("BigMaac agent unavailable: %s", error)
                await self._kill()
                raise

    async def _start(self) -> dict[str, Any]:
        if not self.node:
            raise AgentUnavailable("cannot find the Node executable; install Node.js or set BIGMAAC_NODE")
        if not paths.BUNDLED_AGENT.is_file():
            raise AgentUnavailable(f"the agent bundle is missing: {paths.BUNDLED_AGENT}")
        self.state, self.error = "starting", ""
        self.starts += 1
        command = [self.node, str(paths.BUNDLED_AGENT), "agent", "--parent-pid", str(os.getpid())]
        try:
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=paths.agent_environment(),
                start_new_session=True,  # a Ctrl-C in the server's terminal is the server's
            )
        except OSError as error:
            raise AgentUnavailable(f"cannot run {command[0]}: {error.strerror}") from error
        self.log.info("Started the BigMaac agent (pid %s)", self._process.pid)
        self._spawn(self._read_stdout(self._process))
        self._spawn(self._read_stderr(self._process))
        params = {
            "processId": os.getpid(),
            "protocolVersion": PROTOCOL_VERSION,
            "clientInfo": {"name": "jupyterlab-bigmaac server", "version": __version__},
            "capabilities": {},
        }
        try:
            reply = await asyncio.wait_for(self._call("initialize", params), INITIALIZE_TIMEOUT)
        except asyncio.TimeoutError:
            raise AgentUnavailable("the agent did not answer initialize in time") from None
        if "error" in reply:
            raise AgentUnavailable(f"the agent refused initialize: {reply['error'].get('message')}")
        self._write(jsonrpc.notification("initialized", {}))
        self.initialize_result = reply.get("result") or {}
        self.state = "running"
        for listener in list(self._start_listeners):
            try:
                listener()
            except Exception:
                self.log.exception("BigMaac agent start listener failed")
        return self.initialize_result

    async def stop(self) -> None:
        """Ask the agent to shut down and exit; kill it if it does not."""
        process = self._process
        self.state = "stopped"
        if process is None or process.returncode is not None:
            return
        try:
            await asyncio.wait_for(self._call("shutdown", None), STOP_TIMEOUT)
            self._write(jsonrpc.notification("exit"))
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except (asyncio.TimeoutError, AgentUnavailable, ConnectionError):
            pass
        await self._kill()
        for task in list(self._tasks):
            task.cancel()

    async def _kill(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()

    @property
    def pid(self) -> int | None:
        running = self._process is not None and self._process.returncode is None
        return self._process.pid if running else None

    def status(self) -> dict[str, Any]:
        info = (self.initialize_result or {}).get("serverInfo")
        return {
            "state": self.state,
            "pid": self.pid,
            "starts": self.starts,
            "error": self.error,
            "serverInfo": info,
        }

    # -- traffic ---------------------------------------------------------

    async def request(self, method: str, params: Any = None) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        """Send a request; return its agent-side id and a future of the response."""
        await self.ensure_started()
        request_id = next(self._ids)
        future = self._send_request(request_id, method, params)
        return request_id, future

    async def notify(self, method: str, params: Any = None) -> None:
        await self.ensure_started()
        self._write(jsonrpc.notification(method, params))

    def add_start_listener(self, listener: StartListener) -> None:
        """Call `listener` after every successful start (state is then "running")."""
        self._start_listeners.append(listener)

    def remove_start_listener(self, listener: StartListener) -> None:
        if listener in self._start_listeners:
            self._start_listeners.remove(listener)

    def add_listener(self, listener: NotificationListener) -> None:
        self._listeners.add(listener)

    def remove_listener(self, listener: NotificationListener) -> None:
        self._listeners.discard(listener)

    async def _call(self, method: str, params: Any) -> dict[str, Any]:
        return await self._send_request(next(self._ids), method, params)

    def _send_request(self, request_id: int, method: str, params: Any) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            self._write(message)
        except (AgentUnavailable, ConnectionError) as error:
            self._pending.pop(request_id, None)
            future.set_exception(AgentUnavailable(str(error)))
        return future

    def _write(self, message: dict[str, Any]) -> None:
        process = self._process
        if process is None or process.stdin is None or process.returncode is not None:
            raise AgentUnavailable("the agent is not running")
        process.stdin.write(jsonrpc.encode(message))

    async def _read_stdout(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        reason = "the agent closed its output"
        try:
            while True:
                message = await jsonrpc.read_message(process.stdout)
                if message is None:
                    break
                self._dispatch(message)
        except (jsonrpc.FramingError, asyncio.IncompleteReadError) as error:
            reason = f"the agent sent a malformed message ({error})"
            process.kill()
        except Exception as error:  # a bug of ours must not leave a dead agent "running"
            self.log.exception("BigMaac could not handle the agent's output")
            reason = f"its output could not be handled ({error})"
            if process.returncode is None:
                process.kill()
        status = await process.wait()
        if process is self._process:
            self._died(f"{reason}; exit status {status}")

    async def _read_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        while True:
            line = await process.stderr.readline()
            if not line:
                return
            self.log.warning("[bigmaac agent] %s", line.decode("utf-8", "replace").rstrip())

    def _dispatch(self, message: dict[str, Any]) -> None:
        if jsonrpc.is_response(message):
            future = self._pending.pop(message.get("id"), None)  # type:ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(message)
            return
        if "id" in message:  # a request from the agent: the server offers none
            try:
                self._write(jsonrpc.error_response(
                    message["id"], jsonrpc.METHOD_NOT_FOUND, f"unknown method {message.get('method')!r}"
                ))
            except (AgentUnavailable, ConnectionError):
                pass  # it exited after asking; the end of its output follows
            return
        for listener in list(self._listeners):
            try:
                listener(message)
            except Exception:
                self.log.exception("BigMaac agent notification listener failed")

    def _died(self, reason: str) -> None:
        if self.state == "running":
            # A death after a good start: the next use restarts at once.
            self.last_start = 0.0
        if self.state != "stopped":
            self.log.warning("The BigMaac agent stopped: %s; it restarts on next use", reason)
            self.state, self.error = "failed", reason
        self.initialize_result = None
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(AgentUnavailable(reason))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
