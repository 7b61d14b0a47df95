"""Automatic page-out from the user's settings, with no browser or websocket open.

The server builds the agent's Policy from the saved settings, starts the agent
itself while a BigMaac kernel runs and the policy wants it, and tells it the
policy (`policy/set`) and the kernels' busy/idle states.
"""

from __future__ import annotations

import inspect
import os
import signal
import time
from pathlib import Path

from conftest import MiB, require_artifacts

ALLOCATE_256_MIB = "import numpy as np\na = np.ones(256 * 2**20 // 8)\nprint(int(a.sum()))"
AGENT_TIMEOUT = 60
PAGEOUT_TIMEOUT = 120


def wait_for(predicate, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.1)
    return value


def disk_backed_resident(pid: int, swap_dir: Path) -> int:
    """Resident bytes of the process's mappings of (unlinked) files in `swap_dir`, from smaps."""
    prefix = str(swap_dir) + "/"
    resident, inside = 0, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
            inside = len(fields) >= 6 and fields[5].startswith(prefix)
        elif inside and fields[0] == "Rss:":
            resident += int(fields[1]) * 1024
    return resident



# The same measurement, run inside the kernel.
SMAPS_RESIDENT_SOURCE = "from pathlib import Path\n" + inspect.getsource(disk_backed_resident)


def agent_status(server):
    return server.json("bigmaac/status")["agent"]


def test_the_policy_follows_the_saved_settings(make_server):
    require_artifacts()
    server = make_server()
    defaults = agent_status(server)["policy"]["policy"]
    assert defaults == {
        "idlePageout": {"enabled": True, "idleSeconds": 30},
        "pressure": {"enabled": True, "thresholdPercent": 85},
    }
    server.write_user_settings('{"autoPageout": "never", "memoryPressurePercent": 0}')
    policy = agent_status(server)["policy"]["policy"]
    assert policy["idlePageout"]["enabled"] is False and policy["pressure"]["enabled"] is False
    server.write_user_settings('{"autoPageoutIdleSeconds": 5, "memoryPressurePercent": 70}')
    assert agent_status(server)["policy"]["policy"] == {
        "idlePageout": {"enabled": True, "idleSeconds": 5},
        "pressure": {"enabled": True, "thresholdPercent": 70},
    }
    server.write_user_settings('{"autoPageoutIdleSeconds": 0, "memoryPressurePercent": 100}')
    status = server.json("bigmaac/status")
    assert status["agent"]["policy"]["policy"] == defaults
    assert len(status["userSettings"]["problems"]) == 2


def test_no_agent_runs_when_nothing_is_automatic(make_server):
    require_artifacts()
    server = make_server()
    server.write_user_settings('{"autoPageout": "never", "memoryPressurePercent": 0}')
    kernel = server.start_notebook("manual.ipynb")
    assert kernel.execute("print(1)").strip() == "1"
    # Several of the server's checks (one a second) have run meanwhile.
    time.sleep(3)
    assert agent_status(server)["state"] == "stopped"
    kernel.shutdown()


def test_idle_kernel_is_paged_out_with_no_browser_and_a_busy_one_is_not(make_server):
    require_artifacts()
    server = make_server()
    server.write_user_settings('{"autoPageout": "idle", "autoPageoutIdleSeconds": 1}')
    kernel = server.start_notebook("idle.ipynb")
    # The server starts the agent for the policy's sake: no websocket is open.
    wait_for(lambda: agent_status(server)["state"] == "running", "started the agent", AGENT_TIMEOUT)
    assert agent_status(server)["policy"]["supported"], "the bundled agent does not advertise `policy`"
    wait_for(lambda: agent_status(server)["policy"]["inEffect"], "set the agent's policy", AGENT_TIMEOUT)

    # While the cell runs the kernel is busy, so nothing pages it out, however long
    # the cell takes beyond idleSeconds: the array stays in RAM.
    measure = f"time.sleep(3)\nprint(disk_backed_resident(os.getpid(), {str(server.swap_dir)!r}))"
    output = kernel.execute(f"import os, time\n{SMAPS_RESIDENT_SOURCE}\n{ALLOCATE_256_MIB}\n{measure}")
    total, resident = map(int, output.split())
    assert total == 256 * MiB // 8
    assert resident >= 0.9 * 256 * MiB, f"a busy kernel lost {256 * MiB - resident} resident bytes"
    pid = server.kernel_state(kernel.id)["pid"]
    # Idle for a second, it is paged out.
    wait_for(
        lambda: disk_backed_resident(pid, server.swap_dir) <= 0.02 * 256 * MiB,
        "paged the idle kernel out", PAGEOUT_TIMEOUT,
    )
    # The data is intact after the page-out.
    assert kernel.execute("print(int(a.sum()))").strip() == str(256 * MiB // 8)
    kernel.shutdown()


def test_the_agent_gets_the_policy_at_start_and_on_every_change(make_server):
    require_artifacts()
    server = make_server()
    server.write_user_settings('{"autoPageoutIdleSeconds": 9, "memoryPressurePercent": 60}')
    rpc = server.agent_socket()  # a browser starts the agent
    try:
        capabilities = rpc.call(1, "initialize", {})["result"]["capabilities"]
        assert capabilities.get("policy") and capabilities.get("kernelState"), capabilities
        wait_for(lambda: agent_status(server)["policy"]["inEffect"], "set the agent's policy", AGENT_TIMEOUT)
        assert rpc.call(2, "policy/get")["result"] == {
            "idlePageout": {"enabled": True, "idleSeconds": 9},
            "pressure": {"enabled": True, "thresholdPercent": 60},
        }
        server.write_user_settings('{"autoPageout": "never", "memoryPressurePercent": 0}')
        wait_for(
            lambda: rpc.call(f"get-{time.monotonic()}", "policy/get")["result"]["idlePageout"]["enabled"] is False,
            "sent the changed policy", AGENT_TIMEOUT,
        )
        policy = rpc.call(3, "policy/get")["result"]
        assert policy["pressure"]["enabled"] is False
        assert agent_status(server)["policy"] == {
            "policy": policy, "supported": True, "inEffect": True, "error": "",
        }
    finally:
        rpc.close()


def test_a_dead_agent_is_restarted_with_the_policy_and_the_kernels_states(make_server):
    """With no browser open: the agent dies, the server starts another once the
    policy wants one, sends it the policy and tells it which kernels are idle."""
    require_artifacts()
    server = make_server()
    server.write_user_settings('{"autoPageout": "idle", "autoPageoutIdleSeconds": 1, "memoryPressurePercent": 0}')
    kernel = server.start_notebook("restart.ipynb")
    wait_for(lambda: agent_status(server)["policy"]["inEffect"], "set the first agent's policy", AGENT_TIMEOUT)

    # Nothing automatic: the agent is not wanted, so its death is not repaired yet.
    server.write_user_settings('{"autoPageout": "never", "memoryPressurePercent": 0}')
    wait_for(
        lambda: agent_status(server)["policy"]["inEffect"]
        and not agent_status(server)["policy"]["policy"]["idlePageout"]["enabled"],
        "sent the agent 'never'", AGENT_TIMEOUT,
    )
    first = agent_status(server)
    os.kill(first["pid"], signal.SIGKILL)
    wait_for(lambda: agent_status(server)["state"] == "failed", "noticed the agent's death", AGENT_TIMEOUT)

    # The kernel fills 256 MiB of disk-backed memory and goes idle while no agent runs.
    output = kernel.execute(f"import os\n{SMAPS_RESIDENT_SOURCE}\n{ALLOCATE_256_MIB}")
    assert output.strip() == str(256 * MiB // 8)
    pid = server.kernel_state(kernel.id)["pid"]
    wait_for(lambda: server.kernel_state(kernel.id)["executionState"] == "idle", "seen idle", AGENT_TIMEOUT)
    assert disk_backed_resident(pid, server.swap_dir) >= 0.9 * 256 * MiB
    assert agent_status(server)["state"] == "failed"

    # Wanted again: a new agent starts, gets idleSeconds 1 (not its default) and
    # the kernel's idle state, replayed, and so pages the kernel out.
    server.write_user_settings('{"autoPageout": "idle", "autoPageoutIdleSeconds": 1, "memoryPressurePercent": 0}')
    wait_for(
        lambda: disk_backed_resident(pid, server.swap_dir) <= 0.02 * 256 * MiB,
        "paged the idle kernel out with a new agent", PAGEOUT_TIMEOUT,
    )
    second = agent_status(server)
    assert second["starts"] == first["starts"] + 1 and second["pid"] != first["pid"]
    assert second["policy"]["inEffect"] is True

    # A death while the policy wants the agent is repaired at once.
    os.kill(second["pid"], signal.SIGKILL)
    wait_for(
        lambda: agent_status(server)["starts"] == second["starts"] + 1
        and agent_status(server)["state"] == "running" and agent_status(server)["policy"]["inEffect"],
        "restarted the agent with its policy", AGENT_TIMEOUT,
    )
    assert kernel.execute("print(int(a.sum()))").strip() == str(256 * MiB // 8)
    kernel.shutdown()
