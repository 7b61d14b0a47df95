"""A browser logged in by cookie: it reads freely, writes only with the XSRF
token, and its agent websocket only from the server's own origin."""

from __future__ import annotations

import json

import pytest
import websocket

from conftest import require_artifacts


@pytest.fixture(scope="module")
def server(make_server):
    require_artifacts()
    return make_server()


@pytest.fixture(scope="module")
def browser(server):
    return server.browser_login()


def cookie_header(browser) -> str:
    return "; ".join(f"{name}={value}" for name, value in browser.cookies.items())


def origin(server) -> str:
    return f"http://127.0.0.1:{server.port}"


def test_a_logged_in_browser_reads_every_endpoint(server, browser):
    for path in ("bigmaac/status", "bigmaac/kernels", "bigmaac/notebooks"):
        response = browser.get(server.url + path, timeout=30)
        assert response.status_code == 200, f"{path}: {response.status_code}"
        assert isinstance(response.json(), dict)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_a_cookie_write_without_xsrf_is_refused(server, browser, method):
    server.request("PUT", "bigmaac/notebooks", params={"path": "kept.ipynb"}, json={"enabled": True})
    response = browser.request(
        method, server.url + "bigmaac/notebooks", params={"path": "kept.ipynb"},
        json={"enabled": False}, timeout=30,
    )
    assert response.status_code == 403
    # Nothing changed.
    assert server.json("bigmaac/notebooks?path=kept.ipynb")["toggle"] == {"enabled": True}


def test_a_cookie_write_with_xsrf_is_accepted(server, browser):
    response = browser.put(
        server.url + "bigmaac/notebooks", params={"path": "xsrf.ipynb"}, json={"enabled": False},
        headers={"X-XSRFToken": browser.cookies["_xsrf"]}, timeout=30,
    )
    assert response.status_code == 200, response.text
    assert server.json("bigmaac/notebooks?path=xsrf.ipynb")["toggle"] == {"enabled": False}


def test_the_agent_websocket_refuses_another_origin(server, browser):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            server.ws_url + "bigmaac/agent", header=[f"Cookie: {cookie_header(browser)}"],
            origin="http://evil.example", timeout=30,
        )
    assert refused.value.status_code == 403
    assert "Blocking Cross Origin WebSocket Attempt" in server.log()


def test_the_agent_websocket_accepts_the_same_origin_with_the_cookie(server, browser):
    socket = websocket.create_connection(
        server.ws_url + "bigmaac/agent",
        header=[f"Cookie: {cookie_header(browser)}"], origin=origin(server), timeout=60,
    )
    try:
        socket.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}))
        reply = json.loads(socket.recv())
        assert reply["id"] == 1 and reply["result"]["serverInfo"]["name"], reply
    finally:
        socket.close()


def test_the_websocket_refuses_a_browser_without_the_login_cookie(server):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(server.ws_url + "bigmaac/agent", origin=origin(server), timeout=30)
    assert refused.value.status_code in (401, 403)
