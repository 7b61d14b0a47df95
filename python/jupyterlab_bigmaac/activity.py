"""Each kernel's execution state (busy or idle), watched by the server itself.

jupyter_server's kernel manager already follows every kernel's IOPub status
messages (`execution_state`, `last_activity`), with or without a browser.
This watcher samples that state, records it in the kernel registry and hands
every change to one seam, `KernelStateForwarder.forward`, which tells the
agent once the agent says it understands `kernel/state`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from tornado.ioloop import PeriodicCallback

from .agent import Agent
from .registry import kernel_registry

# Sampling period of jupyter_server's kernel states. Reading them is a few
# attribute lookups per kernel; the kernel manager keeps them current.
SAMPLE_INTERVAL_MS = 100
# A kernel may move to another cgroup after launch (a wrapper in its
# kernelspec): besides at each state change, look again this often.
CGROUP_SAMPLE_EVERY = 10
KERNEL_STATE_CAPABILITY = "kernelState"
KERNEL_STATE_METHOD = "kernel/state"


class KernelStateForwarder:
    """The seam between kernel states and the agent."""

    def __init__(self, agent: Agent, log: logging.Logger) -> None:
        self.agent = agent
        self.log = log
        self.sent = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        # States seen before the agent ran (or by a previous agent) are not lost.
        agent.add_start_listener(self.replay)

    def replay(self) -> None:
        """Tell a freshly started agent the current state of every running kernel."""
        for record in kernel_registry.all():
            if record.running and record.execution_state:
                self.forward(record.kernel_id, record.execution_state, record.pid)

    @property
    def enabled(self) -> bool:
        """True once a running agent advertised the `kernelState` capability."""
        if self.agent.state != "running" or not self.agent.initialize_result:
            return False
        capabilities = self.agent.initialize_result.get("capabilities") or {}
        return bool(capabilities.get(KERNEL_STATE_CAPABILITY))

    def forward(self, kernel_id: str, state: str, pid: int | None) -> None:
        # Never starts the agent: kernel states alone are no reason to run it.
        if not self.enabled:
            return
        params = {"kernelId": kernel_id, "state": state, "pid": pid}
        task = asyncio.ensure_future(self._send(params))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, params: dict[str, Any]) -> None:
        try:
            await self.agent.notify(KERNEL_STATE_METHOD, params)
            self.sent += 1
        except Exception as error:  # the agent may have just died; it restarts on next use
            self.log.debug("BigMaac: kernel state not forwarded: %s", error)


class KernelStateWatcher:
    """Samples jupyter_server's kernel states into the registry."""

    def __init__(self, kernel_manager: Any, forwarder: KernelStateForwarder, log: logging.Logger):
        self.kernel_manager = kernel_manager
        self.forwarder = forwarder
        self.log = log
        self._callback = PeriodicCallback(self.sample, SAMPLE_INTERVAL_MS)
        self._samples = 0

    def start(self) -> None:
        self._callback.start()

    def stop(self) -> None:
        self._callback.stop()

    def sample(self) -> None:
        self._samples += 1
        look_at_cgroups = self._samples % CGROUP_SAMPLE_EVERY == 0
        try:
            for kernel_id in list(self.kernel_manager.list_kernel_ids()):
                self._sample_kernel(kernel_id, look_at_cgroups)
        except Exception:  # keep watching; one bad sample must not stop the callback
            self.log.exception("BigMaac could not sample kernel states")

    def _sample_kernel(self, kernel_id: str, look_at_cgroup: bool) -> None:
        try:
            kernel = self.kernel_manager.get_kernel(kernel_id)
        except KeyError:  # shut down since it was listed
            return
        state = getattr(kernel, "execution_state", None)
        if not isinstance(state, str):
            return
        last_activity = getattr(kernel, "last_activity", None)
        idle_at = _timestamp(last_activity) if state == "idle" else None
        changed = kernel_registry.execution_state(kernel_id, state, idle_at)
        if changed or look_at_cgroup:
            kernel_registry.observe_cgroup(kernel_id)
        if changed:
            record = kernel_registry.get(kernel_id)
            self.forwarder.forward(kernel_id, state, record.pid if record else None)


def _timestamp(moment: Any) -> float | None:
    return moment.timestamp() if isinstance(moment, datetime) else None
