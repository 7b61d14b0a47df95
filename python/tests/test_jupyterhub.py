"""BigMaac in a real JupyterHub: a user's server under /user/<name>/, reached through the hub's proxy.

The hub runs on 127.0.0.1 with the dummy authenticator, configurable-http-proxy
(installed by `make hub-env`) and SimpleLocalProcessSpawner, which starts
`jupyterhub-singleuser` as the hub's own user with a private home directory.
The BigMaac configuration reaches the single-user server as a config file on
its Jupyter config path, as singleuser.extraFiles does on zero-to-jupyterhub
(docs/jupyterhub.md). Everything the test asks goes through the proxy with a
token the hub issued for the user.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from conftest import (
    MiB, REPO, STARTUP_TIMEOUT, VENV_BIN, Kernel, RpcSocket, _stop_with_parent, free_port,
    require_artifacts,
)

PROXY = REPO / "python" / "tests" / "jupyterhub" / "node_modules" / ".bin" / "configurable-http-proxy"
SPAWN_TIMEOUT = 180
USER = "alice"
OTHER_USER = "bob"


class Hub:
    """One `jupyterhub` process with its proxy, database and users' homes in `home`."""

    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.service_token = "hub-test-service-" + uuid.uuid4().hex
        self.swap_dir = home / "swap-volume"
        self.log_path = home / "jupyterhub.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        # What singleuser.extraFiles would mount as a Jupyter server config file.
        singleuser_config = self.home / "singleuser-config"
        singleuser_config.mkdir()
        (singleuser_config / "jupyter_server_config.json").write_text(
            json.dumps({"BigMaac": {"swap_dir": str(self.swap_dir), "min_bigmaac_size": "16M"}})
        )
        settings = {
            "bind_url": self.url,
            "hub_bind_url": f"http://127.0.0.1:{free_port()}",
            "proxy_api_url": f"http://127.0.0.1:{free_port()}",
            "proxy": str(PROXY),
            "db": f"sqlite:///{self.home / 'jupyterhub.sqlite'}",
            "home": str(self.home / "homes" / "{username}"),
            "singleuser": str(VENV_BIN / "jupyterhub-singleuser"),
            "service_token": self.service_token,
            "environment": {
                "JUPYTER_CONFIG_PATH": str(singleuser_config),
                "BIGMAAC_SEGMENT_DIR": str(self.home / "segments"),
            },
            "timeout": SPAWN_TIMEOUT,
        }
        (self.home / "jupyterhub_config.py").write_text(
            f"settings = {settings!r}\n" + HUB_CONFIG_BODY
        )

    def start(self) -> "Hub":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BIGMAAC_", "JUPYTER", "LD_PRELOAD"))}
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "jupyterhub"), "-f", str(self.home / "jupyterhub_config.py")],
                cwd=self.home, env=env, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_stop_with_parent,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"jupyterhub exited at start-up:\n{self.log()}", pytrace=False)
            try:
                if requests.get(self.url + "hub/api/", timeout=10).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        self.stop()
        pytest.fail(f"jupyterhub not ready after {STARTUP_TIMEOUT}s:\n{self.log()}", pytrace=False)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # the hub stops the users' servers and its proxy
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:]

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method, self.url + "hub/api/" + path,
            headers={"Authorization": f"token {self.service_token}"}, timeout=60, **kwargs,
        )

    def add_user(self, name: str) -> str:
        """Create the user and return a token the hub issued for them."""
        created = self.api("POST", f"users/{name}")
        assert created.status_code == 201, created.text
        token = self.api("POST", f"users/{name}/tokens", json={"note": "bigmaac test"})
        assert token.status_code == 201, token.text
        return token.json()["token"]

    def spawn(self, name: str) -> None:
        started = self.api("POST", f"users/{name}/server")
        assert started.status_code in (201, 202), started.text
        deadline = time.monotonic() + SPAWN_TIMEOUT
        while True:
            server = (self.api("GET", f"users/{name}").json().get("servers") or {}).get("")
            if server and server.get("ready"):
                return
            assert time.monotonic() < deadline, f"{name}'s server never became ready:\n{self.log()}"
            time.sleep(0.5)


HUB_CONFIG_BODY = '''
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = settings["bind_url"]
c.JupyterHub.hub_bind_url = settings["hub_bind_url"]
c.JupyterHub.db_url = settings["db"]
c.JupyterHub.cookie_secret_file = "jupyterhub_cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.ConfigurableHTTPProxy.command = [settings["proxy"]]
c.ConfigurableHTTPProxy.api_url = settings["proxy_api_url"]
c.ConfigurableHTTPProxy.pid_file = "jupyterhub-proxy.pid"
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = settings["home"]
c.Spawner.cmd = [settings["singleuser"]]
c.Spawner.args = ["--allow-root"]  # these machines run everything as root
c.Spawner.environment = settings["environment"]
c.Spawner.start_timeout = settings["timeout"]
c.Spawner.http_timeout = settings["timeout"]
c.JupyterHub.services = [{"name": "bigmaac-test", "api_token": settings["service_token"]}]
c.JupyterHub.load_roles = [
    {"name": "bigmaac-test", "scopes": ["admin:users", "admin:servers", "tokens"], "services": ["bigmaac-test"]}
]
'''


class UserServer:
    """A user's single-user server as the proxy exposes it, with the user's token."""

    def __init__(self, hub: Hub, name: str, token: str):
        self.base = f"user/{name}/"
        self.url = hub.url + self.base
        self.ws_url = self.url.replace("http://", "ws://", 1)
        self.token = token

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        token = self.token if token is None else token
        headers = {"Authorization": f"token {token}"} if token else {}
        return requests.request(
            method, self.url + path, headers=headers, timeout=60, allow_redirects=False, **kwargs
        )

    def json(self, path: str) -> Any:
        response = self.request("GET", path)
        assert response.status_code == 200, f"GET {self.base}{path}: {response.status_code} {response.text}"
        return response.json()


@pytest.fixture(scope="module")
def hub(disk_tmp):
    require_artifacts()
    if not PROXY.is_file():
        pytest.fail(f"configurable-http-proxy is not installed at {PROXY}: run `make hub-env`", pytrace=False)
    hub = Hub(Path(tempfile.mkdtemp(prefix="hub-", dir=disk_tmp))).start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def alice(hub):
    server = UserServer(hub, USER, hub.add_user(USER))
    hub.spawn(USER)
    return server


def test_status_through_the_proxy_needs_the_users_token(hub, alice):
    status = alice.json("bigmaac/status")
    assert status["libraryFound"] is True
    assert status["enabledByDefault"] is True, status["reason"]
    assert status["swapDir"] == str(hub.swap_dir)  # from the single-user config file
    assert status["minBigmaacSize"] == "16M"

    assert alice.request("GET", "bigmaac/status", token="").status_code == 403
    assert alice.request("GET", "bigmaac/status", token="not-a-token").status_code == 403
    # Another user of the same hub may not use alice's server.
    bob = hub.add_user(OTHER_USER)
    assert alice.request("GET", "bigmaac/status", token=bob).status_code == 403


def test_a_users_kernel_starts_with_the_preload(hub, alice):
    response = alice.request(
        "POST", "api/sessions",
        json={"path": "hub.ipynb", "name": "hub.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    assert response.status_code == 201, response.text
    model = response.json()
    kernel = Kernel(alice, model["kernel"]["id"], model["id"])  # type:ignore[arg-type]
    try:
        kernels = {k["id"]: k["bigmaac"] for k in alice.json("bigmaac/kernels")["kernels"]}
        state = kernels[kernel.id]
        assert state["enabled"] is True, state["reason"]
        assert state["notebookPath"] == "hub.ipynb"
        environment = kernel.environment("LD_PRELOAD", "BIGMAAC_DIR", "BIGMAAC_KERNEL_ID")
        assert environment["pid"] == state["pid"]
        assert environment["LD_PRELOAD"].split(":")[-1] == state["settings"]["library"]
        assert environment["BIGMAAC_DIR"] == str(hub.swap_dir)
        assert environment["BIGMAAC_KERNEL_ID"] == kernel.id
        # A disk-backed allocation: the kernel's stats segment appears to the agent.
        assert kernel.execute(f"import numpy as np\na = np.ones({64 * MiB} // 8)\nprint(int(a.sum()))").strip() == str(
            64 * MiB // 8
        )

        rpc = RpcSocket(alice.ws_url + "bigmaac/agent", {"Authorization": f"token {alice.token}"})
        try:
            initialized = rpc.call(1, "initialize", {"processId": None, "capabilities": {}})
            assert initialized["result"]["serverInfo"]["name"]
            listed = rpc.call(2, "processes/list")["result"]["processes"]
            ours = [p for p in listed if p["kernelId"] == kernel.id]
            assert ours and ours[0]["pid"] == state["pid"], listed
            assert ours[0]["diskBacked"]["bytes"] >= 64 * MiB
        finally:
            rpc.close()
    finally:
        kernel.shutdown()


def test_the_agent_websocket_refuses_a_missing_token(alice):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        RpcSocket(alice.ws_url + "bigmaac/agent", {})
    assert refused.value.status_code == 403
