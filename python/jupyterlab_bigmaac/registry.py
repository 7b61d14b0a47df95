"""What the provisioner decided for each kernel, for the server to report.

The provisioner and the server extension run in the same process; this
registry is the only thing they share.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .settings import Resolution

# Records of kernels that have ended are kept for a while so their exit can be
# reported; beyond this many the oldest are forgotten.
MAX_ENDED_RECORDS = 100


@dataclass
class KernelRecord:
    kernel_id: str
    label: str
    resolution: Resolution
    pid: int | None = None
    launches: int = 0
    running: bool = False
    # Exit status of this launch once it ended (negative: the signal that
    # killed it, e.g. -9 from the OOM killer), and of the launch before it.
    exit_status: int | None = None
    previous_exit_status: int | None = None
    updated_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        result = self.resolution.to_json()
        result.update(
            {
                "label": self.label,
                "pid": self.pid,
                "launches": self.launches,
                "running": self.running,
                "exitStatus": self.exit_status,
                "previousExitStatus": self.previous_exit_status,
            }
        )
        return result


class KernelRegistry:
    """Thread-safe map of kernel id -> KernelRecord."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: OrderedDict[str, KernelRecord] = OrderedDict()

    def launching(self, kernel_id: str, label: str, resolution: Resolution) -> None:
        with self._lock:
            previous = self._records.pop(kernel_id, None)
            self._records[kernel_id] = KernelRecord(
                kernel_id,
                label,
                resolution,
                launches=(previous.launches if previous else 0) + 1,
                previous_exit_status=previous.exit_status if previous else None,
            )

    def launched(self, kernel_id: str, pid: int | None) -> None:
        with self._lock:
            record = self._records.get(kernel_id)
            if record:
                record.pid, record.running, record.exit_status = pid, True, None
                record.updated_at = time.time()

    def exited(self, kernel_id: str, status: int | None) -> None:
        with self._lock:
            record = self._records.get(kernel_id)
            if record and record.running:
                record.running, record.exit_status = False, status
                record.updated_at = time.time()
                self._forget_old()

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


kernel_registry = KernelRegistry()
