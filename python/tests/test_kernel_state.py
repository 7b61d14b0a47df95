"""The server follows each kernel's busy/idle state itself, with no browser or websocket open."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from jupyter_client import BlockingKernelClient

from conftest import require_artifacts


@pytest.fixture(scope="module")
def server(make_server):
    require_artifacts()
    return make_server()


def direct_client(server, kernel_id) -> BlockingKernelClient:
    """A client on the kernel's own ZMQ ports: the server's websockets see nothing of it."""
    client = BlockingKernelClient()
    client.load_connection_file(str(server.home / "runtime" / f"kernel-{kernel_id}.json"))
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return client


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_busy_and_idle_are_recorded_without_a_browser(server):
    response = server.request("POST", "api/kernels", json={"name": "python3"})
    assert response.status_code == 201, response.text
    kernel_id = response.json()["id"]
    client = direct_client(server, kernel_id)
    try:
        # jupyter_server follows a kernel's state from its IOPub status messages;
        # its subscription may join after the kernel's first ones, so run a cell.
        client.execute_interactive("pass", timeout=60)
        idle = server.wait_for_state(kernel_id, lambda s: s["executionState"] == "idle", "idle")
        assert idle["lastIdleAt"] is not None

        # The cell waits for a file, so the test sees it busy for as long as it needs.
        release = server.home / "release-the-cell"
        cell_sent_at = datetime.now(timezone.utc)
        msg_id = client.execute(
            f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.05)"
        )
        busy = server.wait_for_state(kernel_id, lambda s: s["executionState"] == "busy", "busy")
        # Busy: the last idle moment is from before the cell.
        assert parse_time(busy["lastIdleAt"]) <= cell_sent_at
        release.touch()
        reply = client.get_shell_msg(timeout=60)
        assert reply["parent_header"]["msg_id"] == msg_id
        idle_again = server.wait_for_state(
            kernel_id,
            lambda s: s["executionState"] == "idle" and parse_time(s["lastIdleAt"]) > cell_sent_at,
            "idle after the cell",
        )
        assert idle_again["running"] is True
    finally:
        client.stop_channels()
        server.request("DELETE", f"api/kernels/{kernel_id}")


def test_states_go_to_the_agent_only_if_it_asks_for_them(server):
    rpc = server.agent_socket()
    try:
        capabilities = rpc.call(1, "initialize", {})["result"]["capabilities"]
        status = server.json("bigmaac/status")["agent"]
        assert status["state"] == "running"
        assert status["forwardsKernelState"] is bool(capabilities.get("kernelState"))
    finally:
        rpc.close()
