"""The agent's automatic page-out policy, taken from the user's settings.

With no browser open nobody else tells the agent what the user chose, so the
server does: each time the agent starts and whenever the settings file
changes, it sends `policy/set` with the whole Policy (docs/protocol.md), once
the agent advertises the capability `policy`. While a kernel runs with
BigMaac and the policy asks for automatic page-out, the server starts the
agent itself, so page-out between cells needs no open tab.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Mapping

from tornado.ioloop import PeriodicCallback

from .agent import Agent, AgentUnavailable
from .registry import kernel_registry
from .user_settings import UserSettingsFile

POLICY_CAPABILITY = "policy"
POLICY_SET_METHOD = "policy/set"
# The settings file is stat'ed this often; reading happens only on change.
CHECK_INTERVAL_MS = 1000
# After a failed start of the agent, wait this long before starting it again
# for the policy's sake (a tab's request still retries at once).
RETRY_FAILED_START_SECONDS = 60.0
POLICY_TIMEOUT = 15.0
# Contract defaults (schema/settings.json) for keys the user left unset.
DEFAULT_AUTO_PAGEOUT = "idle"
DEFAULT_IDLE_SECONDS = 30
DEFAULT_PRESSURE_PERCENT = 85


def policy_from_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The full Policy for validated user settings (missing keys take the defaults)."""
    pressure = values.get("memoryPressurePercent", DEFAULT_PRESSURE_PERCENT)
    return {
        "idlePageout": {
            "enabled": values.get("autoPageout", DEFAULT_AUTO_PAGEOUT) == "idle",
            "idleSeconds": values.get("autoPageoutIdleSeconds", DEFAULT_IDLE_SECONDS),
        },
        "pressure": {
            "enabled": pressure > 0,
            # 0 means "off"; the threshold itself stays a valid percentage.
            "thresholdPercent": pressure or DEFAULT_PRESSURE_PERCENT,
        },
    }


def wants_agent(policy: Mapping[str, Any]) -> bool:
    return bool(policy["idlePageout"]["enabled"] or policy["pressure"]["enabled"])


class PolicySync:
    """Keeps the agent's policy equal to the user's settings."""

    def __init__(self, agent: Agent, settings_file: UserSettingsFile, log: logging.Logger) -> None:
        self.agent = agent
        self.settings_file = settings_file
        self.log = log
        # The last policy sent, to which start of the agent, and whether it accepted it.
        self.sent_policy: dict[str, Any] | None = None
        self._sent_to_start = 0
        self._accepted = False
        self.error = ""
        self._busy = False
        self._callback = PeriodicCallback(self.check, CHECK_INTERVAL_MS)
        self._task: asyncio.Task[Any] | None = None
        agent.add_start_listener(self._agent_started)

    def start(self) -> None:
        self._callback.start()

    def stop(self) -> None:
        self._callback.stop()
        self.agent.remove_start_listener(self._agent_started)

    def policy(self) -> dict[str, Any]:
        return policy_from_settings(self.settings_file.read().policy_values)

    @property
    def supported(self) -> bool:
        if self.agent.state != "running" or not self.agent.initialize_result:
            return False
        capabilities = self.agent.initialize_result.get("capabilities") or {}
        return bool(capabilities.get(POLICY_CAPABILITY))

    def status(self) -> dict[str, Any]:
        return {
            "policy": self.policy(),
            "supported": self.supported,
            "inEffect": self.supported and self._accepted and not self._outdated(self.policy()),
            "error": self.error,
        }

    def check(self) -> None:
        """One cheap look: start the agent if needed, send the policy if changed."""
        if self._busy:
            return
        self._busy = True
        self._task = asyncio.ensure_future(self._check())
        self._task.add_done_callback(lambda _: setattr(self, "_busy", False))

    async def _check(self) -> None:
        try:
            policy = self.policy()
            if self.agent.state != "running" and wants_agent(policy) and _bigmaac_kernel_running():
                if not await self._start_agent():
                    return
            if self.supported and self._outdated(policy):
                await self._send(policy)
        except Exception:  # keep checking; one bad round must not stop the callback
            self.log.exception("BigMaac could not bring the agent's policy up to date")

    def _outdated(self, policy: dict[str, Any]) -> bool:
        """True when the running agent has not been sent `policy` yet."""
        return policy != self.sent_policy or self._sent_to_start != self.agent.starts

    async def _start_agent(self) -> bool:
        if self.agent.state == "failed" and time.monotonic() - self.agent.last_start < RETRY_FAILED_START_SECONDS:
            return False
        try:
            await self.agent.ensure_started()
            return True
        except AgentUnavailable as error:
            self.error = f"the agent could not start: {error}"
            return False

    async def _send(self, policy: dict[str, Any]) -> None:
        starts = self.agent.starts
        try:
            _, future = await self.agent.request(POLICY_SET_METHOD, policy)
            reply = await asyncio.wait_for(future, POLICY_TIMEOUT)
        except (AgentUnavailable, asyncio.TimeoutError) as error:
            self.error = f"policy/set failed: {error or 'no answer'}"
            return
        self._accepted = "error" not in reply
        if self._accepted:
            self.error = ""
            self.log.info("BigMaac: agent policy set from the user's settings: %s", policy)
        else:
            # Remembered as sent anyway: re-sending a refused policy every second helps nobody.
            self.error = f"the agent refused the policy: {reply['error'].get('message')}"
            self.log.warning("BigMaac: %s", self.error)
        self.sent_policy, self._sent_to_start = policy, starts

    def _agent_started(self) -> None:
        # A new agent starts with its own defaults: send ours now.
        self.check()


def _bigmaac_kernel_running() -> bool:
    return any(record.running and record.resolution.enabled for record in kernel_registry.all())
