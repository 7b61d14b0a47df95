"""A kernel killed by the OOM killer of its memory cgroup is reported as such.

The kernel runs in a small real memory cgroup (made for the test, removed
afterwards) with BigMaac turned off for its notebook, and allocates more than
the limit. A kernel killed by hand in the same cgroup is not called an OOM kill.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jupyter_client import BlockingKernelClient

from conftest import MiB, require_artifacts
from jupyterlab_bigmaac.oom import V1_MEMORY_ROOT, V2_ROOTS, is_hierarchy_root, memory_cgroup, oom_kill_count

LIMIT = 256 * MiB
KERNEL_NAME = "python3-in-cgroup"


class MemoryCgroup:
    """A memory cgroup of its own, v1 or v2, with a hard limit and no swap."""

    def __init__(self, name: str):
        self.path = self._create(name)

    @staticmethod
    def _create(name: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("making a memory cgroup needs root")
        if (V1_MEMORY_ROOT / "memory.limit_in_bytes").is_file():
            path = V1_MEMORY_ROOT / name
            path.mkdir()
            (path / "memory.limit_in_bytes").write_text(str(LIMIT))
            return path
        for root in V2_ROOTS:
            if "memory" in _read(root / "cgroup.subtree_control").split():
                path = root / name
                path.mkdir()
                (path / "memory.max").write_text(str(LIMIT))
                if (path / "memory.swap.max").exists():
                    (path / "memory.swap.max").write_text("0")
                return path
        pytest.skip("no writable memory cgroup controller")

    def remove(self) -> None:
        """Kill what is left in the cgroup and remove it. An exiting member keeps
        rmdir busy (EBUSY) for a moment after it has left cgroup.procs."""
        deadline = time.monotonic() + 30
        while True:
            members = _read(self.path / "cgroup.procs").split()
            if time.monotonic() > deadline:
                for pid in members:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            if not members:
                try:
                    self.path.rmdir()
                    return
                except OSError as error:
                    if error.errno != errno.EBUSY or time.monotonic() > deadline + 30:
                        raise
            time.sleep(0.1)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


_cgroup_numbers = itertools.count()


@pytest.fixture
def cgroup():
    # A name per test: a cgroup that outlives its test does not fail the next one.
    group = MemoryCgroup(f"bigmaac-pytest-{os.getpid()}-{next(_cgroup_numbers)}")
    yield group
    group.remove()


@pytest.fixture
def server(make_server, cgroup):
    require_artifacts()
    server = make_server()
    # A kernelspec whose kernel first moves itself into the cgroup.
    spec_dir = server.home / "data" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    script = f'echo $$ > {cgroup.path}/cgroup.procs && exec {sys.executable} -m ipykernel_launcher -f "$0"'
    spec = {"argv": ["/bin/sh", "-c", script, "{connection_file}"],
            "display_name": "Python in a small cgroup", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return server


def wait_for_state(server, kernel_id, predicate, what):
    """As Server.wait_for_state, with room for an OOM kill and the restart after it."""
    return server.wait_for_state(kernel_id, predicate, what, timeout=120)


def test_oom_killed_kernel_is_reported(server, cgroup):
    path = "oom/Big.ipynb"
    (server.home / "root" / "oom").mkdir()
    toggle = server.request("PUT", "bigmaac/notebooks", params={"path": path}, json={"enabled": False})
    assert toggle.status_code == 200, toggle.text
    kernel = server.start_notebook(path, name="Big.ipynb", kernel_name=KERNEL_NAME)
    try:
        assert kernel.execute("print(open('/proc/self/cgroup').read())").count(cgroup.path.name) >= 1
        state = wait_for_state(
            server, kernel.id, lambda s: s["memoryCgroup"] == str(cgroup.path), "seen in its cgroup"
        )
        assert state["enabled"] is False and state["oomKilled"] is None

        client = BlockingKernelClient()
        client.load_connection_file(str(server.home / "runtime" / f"kernel-{kernel.id}.json"))
        client.start_channels()
        try:
            # Four times the limit, in anonymous memory: BigMaac is off for this notebook.
            client.execute("import numpy as np\na = np.ones(4 * %d // 8)" % LIMIT)
            state = wait_for_state(
                server, kernel.id, lambda s: s["launches"] >= 2 and s["previousOomKilled"] is not None,
                "restarted after the OOM kill",
            )
        finally:
            client.stop_channels()
        assert state["previousExitStatus"] == -signal.SIGKILL
        assert state["previousOomKilled"] is True
        assert oom_kill_count(cgroup.path) >= 1

        # A SIGKILL that is not the OOM killer's is not reported as one.
        pid = wait_for_state(
            server, kernel.id, lambda s: s["memoryCgroup"] == str(cgroup.path) and s["running"],
            "seen in its cgroup again",
        )["pid"]
        os.kill(pid, signal.SIGKILL)
        state = wait_for_state(server, kernel.id, lambda s: s["launches"] >= 3, "restarted after the kill")
        assert state["previousExitStatus"] == -signal.SIGKILL
        assert state["previousOomKilled"] is False
    finally:
        kernel.shutdown()


def test_a_kernel_the_server_kills_is_not_called_oom_killed(server, cgroup):
    """All kernels of a pod share its cgroup: an OOM kill of another process
    there, followed by jupyter_client's own SIGKILL of a kernel stuck at restart,
    is not the kernel's OOM kill."""
    kernel = server.start_notebook("Stuck.ipynb", kernel_name=KERNEL_NAME)
    try:
        state = wait_for_state(
            server, kernel.id, lambda s: s["memoryCgroup"] == str(cgroup.path), "seen in its cgroup"
        )
        kills_before = oom_kill_count(cgroup.path)
        # Another process of the same cgroup outgrows the limit and is OOM-killed.
        hog = subprocess.run(
            ["/bin/sh", "-c", f"echo $$ > {cgroup.path}/cgroup.procs && exec {sys.executable} -c "
             f"'import numpy as np; a = np.ones(4 * {LIMIT} // 8)'"],
            timeout=120,
        )
        assert hog.returncode == -signal.SIGKILL
        assert oom_kill_count(cgroup.path) > kills_before
        assert server.kernel_state(kernel.id)["running"] is True

        # A stopped kernel answers no shutdown request and ignores SIGTERM, so the
        # restart ends with jupyter_client's SIGKILL.
        os.kill(state["pid"], signal.SIGSTOP)
        kernel.restart()
        state = wait_for_state(server, kernel.id, lambda s: s["launches"] >= 2, "restarted")
        assert state["previousExitStatus"] == -signal.SIGKILL
        assert state["previousOomKilled"] is False
    finally:
        kernel.shutdown()


def fake_process(tmp_path: Path, cgroup_lines: str, state: str = "S") -> tuple[Path, Path]:
    """A /proc with process 4242 in the given cgroups, and an empty /sys/fs/cgroup."""
    proc = tmp_path / "proc"
    (proc / "4242").mkdir(parents=True)
    (proc / "4242" / "cgroup").write_text(cgroup_lines)
    (proc / "4242" / "stat").write_text(f"4242 (python3 -m x) {state} 1 4242 4242 0 -1\n")
    return proc, tmp_path / "sys" / "fs" / "cgroup"


def add_v1_memory(directory: Path, kills: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "memory.oom_control").write_text(f"oom_kill_disable 0\nunder_oom 0\noom_kill {kills}\n")


KUBEPODS_V1 = "12:memory:/kubepods/burstable/pod1f2e/4d5c6b\n11:pids:/kubepods/burstable/pod1f2e/4d5c6b\n"


def test_a_v1_container_without_a_cgroup_namespace_sees_its_own_cgroup_at_the_root(tmp_path):
    proc, cgroups = fake_process(tmp_path, KUBEPODS_V1)
    add_v1_memory(cgroups / "memory", kills=2)  # the container's own cgroup, mounted at the root
    found = memory_cgroup(4242, proc=proc, cgroup_root=cgroups)
    assert found == cgroups / "memory"
    assert oom_kill_count(found) == 2


def test_the_host_path_is_used_when_the_mount_has_it(tmp_path):
    proc, cgroups = fake_process(tmp_path, KUBEPODS_V1)
    add_v1_memory(cgroups / "memory", kills=0)
    add_v1_memory(cgroups / "memory" / "kubepods" / "burstable" / "pod1f2e" / "4d5c6b", kills=5)
    found = memory_cgroup(4242, proc=proc, cgroup_root=cgroups)
    assert found == cgroups / "memory" / "kubepods" / "burstable" / "pod1f2e" / "4d5c6b"
    assert oom_kill_count(found) == 5


def test_a_v2_container_without_its_path_falls_back_to_the_root(tmp_path):
    proc, cgroups = fake_process(tmp_path, "0::/kubepods.slice/kubepods-pod1.slice/cri-abc.scope\n")
    cgroups.mkdir(parents=True)
    (cgroups / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    assert memory_cgroup(4242, proc=proc, cgroup_root=cgroups) == cgroups


def test_no_memory_cgroup_and_exited_processes_give_none(tmp_path):
    proc, cgroups = fake_process(tmp_path, KUBEPODS_V1)
    cgroups.mkdir(parents=True)  # no memory controller mounted at all
    assert memory_cgroup(4242, proc=proc, cgroup_root=cgroups) is None
    add_v1_memory(cgroups / "memory", kills=0)
    (proc / "4242" / "stat").write_text("4242 (python3) Z 1 4242 4242 0 -1\n")
    assert memory_cgroup(4242, proc=proc, cgroup_root=cgroups) is None


def test_the_real_cgroup_of_this_process_is_found():
    found = memory_cgroup(os.getpid())
    if found is None:
        pytest.skip("no memory cgroup controller visible here")
    assert oom_kill_count(found) is not None
    shown = [line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines()
             if "memory" in line.split(":", 2)[1].split(",") or line.startswith("0::")][0]
    # Either the path /proc shows, under the mount, or the mount itself (a container's own).
    assert str(found).endswith(shown.rstrip("/")) or is_hierarchy_root(found)
