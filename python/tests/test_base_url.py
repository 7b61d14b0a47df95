"""Under a base URL (as on JupyterHub) everything lives below it; the agent ends with the server."""

from __future__ import annotations

import json
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


def test_a_browser_session_and_the_toggle_registry_work_under_the_base_url(server):
    browser = server.browser_login()
    xsrf = browser.cookies["_xsrf"]
    put = browser.put(
        server.url + "bigmaac/notebooks", params={"path": "base.ipynb"}, json={"min_bigmaac_size": "52M"},
        headers={"X-XSRFToken": xsrf}, timeout=30,
    )
    assert put.status_code == 200, put.text
    kernel = server.start_notebook("base.ipynb")
    env = kernel.environment("BIGMAAC_MIN_BIGMAAC_SIZE", "BIGMAAC_KERNEL_ID")
    assert env["BIGMAAC_MIN_BIGMAAC_SIZE"] == "52M" and env["BIGMAAC_KERNEL_ID"] == kernel.id
    cookies = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    socket = websocket.create_connection(
        server.ws_url + "bigmaac/agent", header=[f"Cookie: {cookies}"],
        origin=f"http://127.0.0.1:{server.port}", timeout=60,
    )
    try:
        socket.send('{"jsonrpc": "2.0", "id": "b", "method": "initialize", "params": {}}')
        reply = json.loads(socket.recv())
        assert reply["id"] == "b" and reply["result"]["protocolVersion"], reply
    finally:
        socket.close()
    kernel.shutdown()


def test_agent_websocket_is_kept_alive_with_pings(server):
    rpc = server.agent_socket()
    try:
        rpc.socket.settimeout(5)
        # The agent's broadcasts (processes/changed after the kernel above) may come first.
        opcodes = []
        while websocket.ABNF.OPCODE_PING not in opcodes:
            opcodes.append(rpc.socket.recv_data_frame(control_frame=True)[0])
            assert len(opcodes) < 50, f"no ping among {opcodes}"
        assert set(opcodes) <= {websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_PING}, opcodes
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
