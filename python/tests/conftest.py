"""Real `jupyter server` subprocesses for the tests, and clients to talk to them.

Nothing is mocked: each server runs the installed extension and provisioner
with real ipykernel kernels under the real preload library and agent.
"""

from __future__ import annotations

import ctypes
import faulthandler
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
import requests
import websocket

from jupyterlab_bigmaac import paths
from jupyterlab_bigmaac.swapdir import ram_filesystem

REPO = Path(__file__).resolve().parents[2]
TESTS_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
JUPYTER = VENV_BIN / "jupyter"
BUILT_LIBRARY = REPO / "native" / "build" / "libbigmaac.so"
STARTUP_TIMEOUT = 60
KERNEL_TIMEOUT = 60
TOKEN = "bigmaac-test-" + uuid.uuid4().hex

MiB = 1 << 20
# No test may hang a CI run: past this, dump every thread's stack and exit.
TEST_HARD_TIMEOUT = 240


PR_SET_PDEATHSIG = 1


@pytest.fixture(autouse=True)
def hard_timeout(request):
    faulthandler.dump_traceback_later(TEST_HARD_TIMEOUT, exit=True, file=_real_stderr(request.config))
    yield
    faulthandler.cancel_dump_traceback_later()


def _real_stderr(config: pytest.Config) -> int:
    # pytest captures fd 2; its faulthandler plugin keeps a copy of the real one.
    try:
        from _pytest.faulthandler import fault_handler_stderr_fd_key

        return config.stash[fault_handler_stderr_fd_key]
    except (ImportError, KeyError):
        return sys.stderr.fileno()


def require_artifacts() -> None:
    """Fail, loudly, when the native library or the agent bundle is not built."""
    missing = [
        str(path)
        for path in (paths.BUNDLED_LIBRARY, paths.BUNDLED_ADDON, paths.BUNDLED_AGENT)
        if not path.is_file()
    ]
    if missing:
        pytest.fail(
            "BigMaac artifacts are missing: " + ", ".join(missing)
            + "\nBuild them with `make -C " + str(REPO) + " native addon agent`.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def disk_tmp():
    """A private temporary directory on a real disk (swap files must not be in RAM)."""
    for parent in ("/var/tmp", tempfile.gettempdir(), str(REPO / ".pytest_cache")):
        Path(parent).mkdir(parents=True, exist_ok=True)
        if os.access(parent, os.W_OK) and not ram_filesystem(Path(parent)):
            break
    else:
        pytest.fail("no writable directory on a disk for the swap files", pytrace=False)
    directory = Path(tempfile.mkdtemp(prefix="bigmaac-pytest-", dir=parent))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _stop_with_parent() -> None:
    """In the child: get SIGTERM when pytest dies, so no server (or its kernels
    and agent) outlives an interrupted run."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One `jupyter server` subprocess with private Jupyter directories."""

    def __init__(
        self,
        home: Path,
        bigmaac_config: dict[str, Any],
        base_url: str = "/",
        server_config: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ):
        self.home = home
        self.base_url = base_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{base_url}"
        self.ws_url = f"ws://127.0.0.1:{self.port}{base_url}"
        self.token = TOKEN
        self.swap_dir = home / "swap"
        self.segment_dir = home / "segments"
        self.log_path = home / "server.log"
        # Where JupyterLab's settings editor saves the plugin's settings.
        self.user_settings_file = (
            home / "config" / "lab" / "user-settings" / "jupyterlab-bigmaac" / "settings.jupyterlab-settings"
        )
        self.env = self._environment()
        self._write_config(bigmaac_config, server_config or {}, config or {})
        self.process: subprocess.Popen[bytes] | None = None

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in [name for name in env if name.startswith(("BIGMAAC_", "JUPYTER_", "JUPYTERLAB_"))]:
            del env[name]
        env.pop("LD_PRELOAD", None)
        for name in ("config", "data", "runtime", "ipython", "root"):
            (self.home / name).mkdir(parents=True, exist_ok=True)
        env.update(
            {
                "JUPYTER_CONFIG_DIR": str(self.home / "config"),
                "JUPYTER_DATA_DIR": str(self.home / "data"),
                "JUPYTER_RUNTIME_DIR": str(self.home / "runtime"),
                "IPYTHONDIR": str(self.home / "ipython"),
                "XDG_CACHE_HOME": str(self.home / "cache"),
                "BIGMAAC_SEGMENT_DIR": str(self.segment_dir),
                "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                # Classes the tests hand the server by name (an Authorizer) live here.
                "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")])),
            }
        )
        return env

    def _write_config(
        self, bigmaac_config: dict[str, Any], server_config: dict[str, Any], other: dict[str, Any]
    ) -> None:
        config = {
            **other,  # other configurables' sections (KernelProvisionerFactory, ...)
            "ServerApp": {
                "allow_root": True,
                "open_browser": False,
                "root_dir": str(self.home / "root"),
                **server_config,
            },
            "IdentityProvider": {"token": self.token},
            "BigMaac": {"swap_dir": str(self.swap_dir), **bigmaac_config},
        }
        (self.home / "config" / "jupyter_server_config.json").write_text(json.dumps(config))

    def start(self) -> "Server":
        command = [
            str(JUPYTER), "server", "--ip=127.0.0.1", f"--port={self.port}",
            f"--ServerApp.base_url={self.base_url}", "--ServerApp.port_retries=0",
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.home / "root", preexec_fn=_stop_with_parent,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"jupyter server exited at start-up:\n{self.log()}", pytrace=False)
            try:
                if self.get("api/status").status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"jupyter server not ready after {STARTUP_TIMEOUT}s:\n{self.log()}", pytrace=False)

    def restart(self) -> "Server":
        """Stop the server (and its kernels) and start it again on the same directories."""
        self.stop()
        return self.start()

    def write_user_settings(self, text: str) -> None:
        """Save the plugin's user settings as JupyterLab does (JSON5 text)."""
        self.user_settings_file.parent.mkdir(parents=True, exist_ok=True)
        self.user_settings_file.write_text(text)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # the server then shuts kernels and extensions down
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    # -- HTTP --------------------------------------------------------------

    def headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"token {token}"} if token else {}

    def get(self, path: str, token: str | None = TOKEN) -> requests.Response:
        return requests.get(self.url + path, headers=self.headers(token), timeout=30)

    def request(self, method: str, path: str, token: str | None = TOKEN, **kwargs: Any):
        return requests.request(
            method, self.url + path, headers=self.headers(token), timeout=60, **kwargs
        )

    def json(self, path: str) -> Any:
        response = self.get(path)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    # -- kernels -----------------------------------------------------------

    def start_notebook(
        self, path: str = "Untitled.ipynb", name: str | None = None, kernel_name: str = "python3"
    ) -> "Kernel":
        """A notebook session. JupyterLab sends the file's base name as `name`."""
        response = self.request(
            "POST", "api/sessions",
            json={"path": path, "name": name or path, "type": "notebook", "kernel": {"name": kernel_name}},
        )
        assert response.status_code == 201, f"session not created: {response.text}\n{self.log()}"
        model = response.json()
        return Kernel(self, model["kernel"]["id"], model["id"])

    def kernel_state(self, kernel_id: str) -> dict[str, Any]:
        kernels = {k["id"]: k for k in self.json("bigmaac/kernels")["kernels"]}
        assert kernel_id in kernels, f"kernel {kernel_id} not in /bigmaac/kernels: {kernels}"
        return kernels[kernel_id]["bigmaac"]

    def wait_for_state(
        self, kernel_id: str, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60
    ) -> dict[str, Any]:
        """Poll the kernel's BigMaac state until `predicate` holds; `what` names it on failure."""
        deadline = time.monotonic() + timeout
        while not predicate(state := self.kernel_state(kernel_id)):
            assert time.monotonic() < deadline, f"kernel never {what}: {state}"
            time.sleep(0.05)
        return state

    def browser_login(self) -> requests.Session:
        """A browser-like session logged in through /login: it holds the login
        and _xsrf cookies and sends no token."""
        browser = requests.Session()
        assert browser.get(self.url + "login", timeout=30).status_code == 200
        xsrf = browser.cookies.get("_xsrf")
        assert xsrf, "the server set no _xsrf cookie"
        login = browser.post(self.url + "login", data={"password": self.token, "_xsrf": xsrf}, timeout=30)
        assert login.status_code == 200, login.text
        return browser

    # -- the agent websocket -------------------------------------------------

    def agent_socket(self, token: str | None = TOKEN, **headers: str) -> "RpcSocket":
        return RpcSocket(self.ws_url + "bigmaac/agent", {**self.headers(token), **headers})


class RpcSocket:
    """A JSON-RPC client over the server's agent websocket, one message per frame."""

    def __init__(self, url: str, headers: dict[str, str]):
        self.socket = websocket.create_connection(
            url, header=[f"{k}: {v}" for k, v in headers.items()], timeout=60
        )
        self.received: list[dict[str, Any]] = []  # every message, in arrival order
        self._taken: set[int] = set()  # responses already returned by wait_response

    def send(self, message: Any) -> None:
        self.socket.send(message if isinstance(message, str) else json.dumps(message))

    def send_request(self, request_id: Any, method: str, params: Any = None) -> None:
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def next_message(self, timeout: float = 60) -> dict[str, Any]:
        """The next text message. Pings are answered on the way without
        restarting the clock (the server pings every 30 s)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise websocket.WebSocketTimeoutException(f"no message in {timeout}s")
            self.socket.settimeout(left)
            opcode, frame = self.socket.recv_data_frame(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_TEXT:
                message = json.loads(frame.data)
                self.received.append(message)
                return message

    def wait_response(self, request_id: Any, timeout: float = 60) -> dict[str, Any]:
        """The response to `request_id`, which may have arrived while waiting for
        another (the agent answers in any order)."""
        for message in self.received:
            if _is_response_to(message, request_id) and id(message) not in self._taken:
                self._taken.add(id(message))
                return message
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no response to request {request_id!r} in {timeout}s"
            message = self.next_message(left)
            if _is_response_to(message, request_id):
                self._taken.add(id(message))
                return message

    def call(self, request_id: Any, method: str, params: Any = None) -> dict[str, Any]:
        self.send_request(request_id, method, params)
        return self.wait_response(request_id)

    def close(self) -> None:
        self.socket.close()


def _is_response_to(message: dict[str, Any], request_id: Any) -> bool:
    return "method" not in message and message.get("id") == request_id


class Kernel:
    """Runs code in a kernel through the server's kernel websocket."""

    def __init__(self, server: Server, kernel_id: str, session_id: str):
        self.server = server
        self.id = kernel_id
        self.session_id = session_id

    def execute(self, code: str, timeout: float = KERNEL_TIMEOUT) -> str:
        """Run `code`, wait for idle, and return its stdout; fail on an error."""
        url = f"{self.server.ws_url}api/kernels/{self.id}/channels?session_id={self.session_id}"
        sock = websocket.create_connection(
            url, header=[f"Authorization: token {self.server.token}"], timeout=timeout
        )
        try:
            msg_id = uuid.uuid4().hex
            sock.send(json.dumps(_execute_request(msg_id, self.session_id, code)))
            return _collect_output(sock, msg_id, timeout)
        finally:
            sock.close()

    def environment(self, *names: str) -> dict[str, Any]:
        code = (
            "import json, os\n"
            f"print(json.dumps({{'pid': os.getpid(), **{{n: os.environ.get(n) for n in {list(names)!r}}}}}))"
        )
        return json.loads(self.execute(code).strip().splitlines()[-1])

    def restart(self) -> None:
        response = self.server.request("POST", f"api/kernels/{self.id}/restart")
        assert response.status_code == 200, f"restart failed: {response.text}"

    def shutdown(self) -> None:
        self.server.request("DELETE", f"api/sessions/{self.session_id}")


def _execute_request(msg_id: str, session_id: str, code: str) -> dict[str, Any]:
    return {
        "header": {
            "msg_id": msg_id, "msg_type": "execute_request", "username": "test",
            "session": session_id, "version": "5.3", "date": "",
        },
        "parent_header": {},
        "metadata": {},
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        "channel": "shell",
        "buffers": [],
    }


def _collect_output(sock: websocket.WebSocket, msg_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    output, error, idle, replied = [], None, False, False
    while not (idle and replied):
        left = deadline - time.monotonic()
        assert left > 0, f"the kernel did not finish within {timeout}s"
        sock.settimeout(left)
        opcode, frame = sock.recv_data_frame(control_frame=True)
        if opcode != websocket.ABNF.OPCODE_TEXT:
            continue  # a ping, answered already; the deadline still holds
        message = json.loads(frame.data)
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "stream" and content.get("name") == "stdout":
            output.append(content["text"])
        elif kind == "error":
            error = "\n".join(content.get("traceback", [])) or content.get("evalue")
        elif kind == "status" and content.get("execution_state") == "idle":
            idle = True
        elif kind == "execute_reply":
            replied = True
    if error:
        raise AssertionError(f"kernel raised:\n{error}")
    return "".join(output)


@pytest.fixture(scope="module")
def make_server(disk_tmp):
    """Start servers with a given BigMaac config; all are stopped after the module."""
    servers: list[Server] = []

    def start(
        bigmaac_config: dict[str, Any] | None = None,
        base_url: str = "/",
        server_config: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> Server:
        home = Path(tempfile.mkdtemp(prefix="server-", dir=disk_tmp))
        server = Server(home, bigmaac_config or {}, base_url, server_config, config).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False
