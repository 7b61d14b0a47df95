"""What the provisioner decided for each kernel, for the server to report.

The provisioner and the server extension run in the same process; this
registry and the notebook toggles (notebooks.py) are what they share.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from datetime import datetime, timezone
from typing import Any

from .oom import is_hierarchy_root, memory_cgroup, oom_kill_count
from .settings import Resolution

# Records of kernels that have ended are kept for a while so their exit can be
# reported; beyond this many the oldest are forgotten.
MAX_ENDED_RECORDS = 100


@dataclass
class KernelRecord:
    kernel_id: str
    label: str
    resolution: Resolution
    notebook_path: str | None = None
    pid: int | None = None
    launches: int = 0
    running: bool = False
    # Exit status of this launch once it ended (negative: the signal that
    # killed it, e.g. -9 from the OOM killer), and of the launch before it.
    exit_status: int | None = None
    previous_exit_status: int | None = None
    # Busy/idle as jupyter_server's kernel manager sees it (activity.py), and
    # when the kernel last went idle (seconds since the epoch).
    execution_state: str | None = None
    last_idle_at: float | None = None
    # The memory cgroup the kernel was last seen in, and its OOM-kill count
    # then; compared with the count at exit (oom.py).
    memory_cgroup: str | None = None
    oom_kills_seen: int | None = None
    oom_killed: bool | None = None
    previous_oom_killed: bool | None = None
    # The server itself sent this launch SIGKILL (jupyter_client kills a
    # kernel that does not stop at shutdown or restart).
    killed_by_server: bool = False
    updated_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        result = self.resolution.to_json()
        result.update(
            {
                "label": self.label,
                "notebookPath": self.notebook_path,
                "pid": self.pid,
                "launches": self.launches,
                "running": self.running,
                "exitStatus": self.exit_status,
                "previousExitStatus": self.previous_exit_status,
                "executionState": self.execution_state,
                "lastIdleAt": _iso(self.last_idle_at),
                "memoryCgroup": self.memory_cgroup,
                "oomKilled": self.oom_killed,
                "previousOomKilled": self.previous_oom_killed,
            }
        )
        return result


class KernelRegistry:
    """Thread-safe map of kernel id -> KernelRecord."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: OrderedDict[str, KernelRecord] = OrderedDict()

    def launching(
        self, kernel_id: str, label: str, resolution: Resolution, notebook_path: str | None = None
    ) -> None:
        with self._lock:
            previous = self._records.pop(kernel_id, None)
            self._records[kernel_id] = KernelRecord(
                kernel_id,
                label,
                resolution,
                notebook_path,
                launches=(previous.launches if previous else 0) + 1,
                previous_exit_status=previous.exit_status if previous else None,
                previous_oom_killed=previous.oom_killed if previous else None,
            )

    def launched(self, kernel_id: str, pid: int | None) -> None:
        with self._lock:
            record = self._records.get(kernel_id)
            if record:
                record.pid, record.running, record.exit_status = pid, True, None
                record.updated_at = time.time()
                self._observe_cgroup(record)

    def observe_cgroup(self, kernel_id: str) -> None:
        """Note the running kernel's memory cgroup (it may have moved since launch)."""
        with self._lock:
            record = self._records.get(kernel_id)
            if record and record.running:
                self._observe_cgroup(record)

    def _observe_cgroup(self, record: KernelRecord) -> None:
        try:
            cgroup = memory_cgroup(record.pid) if record.pid else None
        except (OSError, ValueError):  # never let this stop a launch
            return
        if cgroup is None or str(cgroup) == record.memory_cgroup:
            return
        if record.memory_cgroup is not None and is_hierarchy_root(cgroup):
            # Where a dying process appears in the instant before it is a
            # zombie; kernels do not move there of their own accord.
            return
        record.memory_cgroup, record.oom_kills_seen = str(cgroup), oom_kill_count(cgroup)

    def killing(self, kernel_id: str) -> None:
        """The server is about to SIGKILL the running kernel: that exit is not an OOM kill."""
        with self._lock:
            record = self._records.get(kernel_id)
            if record and record.running:
                record.killed_by_server = True

    def exited(self, kernel_id: str, status: int | None) -> None:
        with self._lock:
            record = self._records.get(kernel_id)
            if record and record.running:
                record.running, record.exit_status = False, status
                record.oom_killed = _killed_by_oom(record, status)
                record.updated_at = time.time()
                self._forget_old()

    def execution_state(self, kernel_id: str, state: str, idle_at: float | None) -> bool:
        """Record a sampled state; True when it differs from the last one."""
        with self._lock:
            record = self._records.get(kernel_id)
            if record is None:
                return False
            changed = record.execution_state != state
            record.execution_state = state
            if idle_at is not None:
                record.last_idle_at = idle_at
            if changed:
                record.updated_at = time.time()
            return changed

    def get(self, kernel_id: str) -> KernelRecord | None:
        with self._lock:
            return self._records.get(kernel_id)

    def all(self) -> list[KernelRecord]:
        with self._lock:
            return list(self._records.values())

    def _forget_old(self) -> None:
        ended = [kid for kid, record in self._records.items() if not record.running]
        for kernel_id in ended[: max(0, len(ended) - MAX_ENDED_RECORDS)]:
            del self._records[kernel_id]


def _killed_by_oom(record: KernelRecord, status: int | None) -> bool | None:
    """True when the kernel died of SIGKILL and its cgroup's OOM killer struck
    since the kernel was last seen alive; None when that cannot be told."""
    if status is None:
        return None
    if status != -signal.SIGKILL or record.killed_by_server:
        # The OOM-kill count is the cgroup's: with all kernels of a pod in one
        # cgroup it may have grown for another process's death.
        return False
    if record.memory_cgroup is None or record.oom_kills_seen is None:
        return None
    kills = oom_kill_count(Path(record.memory_cgroup))
    return None if kills is None else kills > record.oom_kills_seen


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).isoformat().replace("+00:00", "Z")


kernel_registry = KernelRegistry()
