"""What an admin or a kernelspec chose wins over BigMaac's defaults.

An Authorizer that refuses the `bigmaac` resource, another default
provisioner, a kernelspec naming its own provisioner, and a kernelspec that
preloads a library of its own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import websocket

from conftest import require_artifacts
from jupyterlab_bigmaac import paths

ENV_NAMES = ("LD_PRELOAD", "BIGMAAC_KERNEL_ID")


def add_kernelspec(server, name: str, **extra) -> None:
    spec_dir = server.home / "data" / "kernels" / name
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": name, "language": "python", **extra,
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


def loaded_libraries(kernel) -> list[str]:
    code = (
        "import json\n"
        "print(json.dumps(sorted({l.split()[-1] for l in open('/proc/self/maps') if '.so' in l})))"
    )
    return json.loads(kernel.execute(code).strip().splitlines()[-1])


def test_an_authorizer_that_refuses_bigmaac_is_obeyed(make_server):
    require_artifacts()
    server = make_server(server_config={"authorizer_class": "bigmaac_test_authorizer.DenyBigMaac"})
    assert server.get("api/status").status_code == 200  # the rest of the server is allowed
    for path in ("bigmaac/status", "bigmaac/kernels", "bigmaac/notebooks"):
        assert server.get(path).status_code == 403, path
    put = server.request("PUT", "bigmaac/notebooks", params={"path": "a.ipynb"}, json={"enabled": False})
    assert put.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        server.agent_socket()
    assert refused.value.status_code == 403
    assert server.json("api/status")  # and the server is still fine


def test_the_admins_default_provisioner_is_respected(make_server):
    require_artifacts()
    server = make_server(config={"KernelProvisionerFactory": {"default_provisioner_name": "local-provisioner"}})
    kernel = server.start_notebook("plain.ipynb")
    env = kernel.environment(*ENV_NAMES)
    assert env["LD_PRELOAD"] is None and env["BIGMAAC_KERNEL_ID"] is None
    assert server.kernel_state(kernel.id)["reasonCode"] == "not-provisioned"
    kernel.shutdown()


def test_a_kernelspec_with_its_own_provisioner_is_not_provisioned(make_server):
    require_artifacts()
    server = make_server()
    add_kernelspec(
        server, "own-provisioner",
        metadata={"kernel_provisioner": {"provisioner_name": "local-provisioner"}},
    )
    kernel = server.start_notebook("own.ipynb", kernel_name="own-provisioner")
    assert kernel.environment(*ENV_NAMES)["LD_PRELOAD"] is None
    state = server.kernel_state(kernel.id)
    assert state["enabled"] is False and state["reasonCode"] == "not-provisioned"
    kernel.shutdown()
    # The default kernelspec of the same server still gets BigMaac.
    kernel = server.start_notebook("default.ipynb")
    assert server.kernel_state(kernel.id)["enabled"] is True
    kernel.shutdown()


def other_library() -> str:
    """A shared library of the system other than ours, to preload next to it."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split()[-1]
        if "/libm.so" in path or "/libz.so" in path:
            return path
    pytest.fail("no libm or libz mapped in this process to preload", pytrace=False)


def test_a_kernelspecs_own_preload_is_kept_with_ours_after_it(make_server):
    require_artifacts()
    server = make_server()
    theirs = other_library()
    add_kernelspec(server, "with-preload", env={"LD_PRELOAD": theirs})
    kernel = server.start_notebook("preload.ipynb", kernel_name="with-preload")
    env = kernel.environment(*ENV_NAMES)
    assert env["LD_PRELOAD"] == f"{theirs}:{paths.BUNDLED_LIBRARY}"
    assert server.kernel_state(kernel.id)["enabled"] is True
    libraries = loaded_libraries(kernel)
    assert theirs in libraries and str(paths.BUNDLED_LIBRARY) in libraries
    kernel.shutdown()
