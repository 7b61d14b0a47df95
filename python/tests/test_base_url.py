"""Under a base URL (as on JupyterHub) everything lives below it; the agent ends with the server."""

from __future__ import annotations

import time

import pytest
import requests
import websocket

from conftest import process_alive, require_artifacts


@pytest.fixture(scope="module")
def server(make_server):
    require_artifacts()
    # Pings every 200 ms so the keep-alive can be seen within the test.
    return make_server(base_url="/user/alice/", server_config={"tornado_settings": {"ws_ping_interval": 200}})


def test_rest_and_websocket_live_under_the_base_url(server):
    assert server.url.endswith("/user/alice/")
    assert server.json("bigmaac/status")["libraryFound"] is True
    assert server.json("bigmaac/kernels") == {"kernels": []}
    root = server.url.replace("/user/alice/", "/")
    outside = requests.get(root + "bigmaac/status", headers=server.headers(server.token), timeout=30)
    assert outside.status_code == 404

    kernel = server.start_notebook("alice.ipynb")
    kernel.execute("import numpy as np; a = np.ones(40 * 2**20 // 8)")
    rpc = server.agent_socket()
    try:
        assert rpc.call(1, "initialize", {})["result"]["protocolVersion"]
        processes = rpc.call(2, "processes/list")["result"]["processes"]
        assert any(p["kernelId"] == kernel.id for p in processes), processes
    finally:
        rpc.close()


def test_agent_websocket_is_kept_alive_with_pings(server):
    rpc = server.agent_socket()
    try:
        rpc.socket.settimeout(5)
        frame = rpc.socket.recv_data_frame(control_frame=True)
        assert frame[0] == websocket.ABNF.OPCODE_PING
    finally:
        rpc.close()


def test_agent_stops_with_the_server(server):
    rpc = server.agent_socket()
    rpc.call(1, "initialize", {})
    rpc.close()
    pid = server.json("bigmaac/status")["agent"]["pid"]
    assert pid and process_alive(pid)
    server.stop()
    deadline = time.monotonic() + 10
    while process_alive(pid):
        assert time.monotonic() < deadline, f"agent {pid} outlived the server"
        time.sleep(0.1)
