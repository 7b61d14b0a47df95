"""Was a kernel killed by the OOM killer? Ask its memory cgroup.

A SIGKILL alone does not say who sent it. The memory cgroup counts the
kills its OOM killer made: `oom_kill` in `memory.oom_control` (cgroup v1) or
in `memory.events` (cgroup v2). Reading the count when a kernel is seen
alive and again when it died tells whether the cgroup killed something
in between; with the kernel the one that died by SIGKILL, that was it.
"""

from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_MEMORY_ROOT = CGROUP_ROOT / "memory"
# Where the v2 hierarchy lives: alone at the root, or beside v1 ("hybrid").
V2_ROOTS = (CGROUP_ROOT, CGROUP_ROOT / "unified")


PROC_ROOT = Path("/proc")


def memory_cgroup(pid: int, proc: Path = PROC_ROOT, cgroup_root: Path = CGROUP_ROOT) -> Path | None:
    """The directory of the memory cgroup `pid` is in, or None if unknown.

    None as well once the process has exited: the kernel then shows it in
    the root cgroup, which is not where it ran. `proc` and `cgroup_root` are
    where /proc and /sys/fs/cgroup are (other places only in tests).
    """
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    if _exited(pid, proc):  # checked after the read, so the read was of a live process
        return None
    unified = None
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        if "memory" in controllers.split(","):
            return _cgroup_directory(cgroup_root / "memory", path, "memory.oom_control")
        if controllers == "":
            unified = path
    if unified is None:
        return None
    for root in (cgroup_root, cgroup_root / "unified"):
        directory = _cgroup_directory(root, unified, "memory.events")
        if directory is not None:
            return directory
    return None


def _cgroup_directory(mount: Path, path: str, marker: str) -> Path | None:
    """Where cgroup `path` of a hierarchy mounted at `mount` is, judged by its file `marker`.

    A container without a cgroup namespace (cgroup v1, usual on Kubernetes
    before v2) sees its processes under the host's path (/kubepods/...),
    which its mount does not have: the container's own cgroup is mounted at
    the root of the hierarchy, so that is the one.
    """
    directory = mount / path.lstrip("/")
    if (directory / marker).is_file():
        return directory
    if path.strip("/") and not directory.exists() and (mount / marker).is_file():
        return mount
    return None


def is_hierarchy_root(cgroup: Path) -> bool:
    return cgroup == V1_MEMORY_ROOT or cgroup in V2_ROOTS


def _exited(pid: int, proc: Path = PROC_ROOT) -> bool:
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X", "x")


def oom_kill_count(cgroup: Path) -> int | None:
    """How many processes the cgroup's OOM killer has killed, or None if unreadable."""
    for name in ("memory.oom_control", "memory.events"):
        try:
            text = (cgroup / name).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None
