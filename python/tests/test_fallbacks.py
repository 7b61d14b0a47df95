"""Whatever goes wrong with BigMaac's settings, the kernel starts, without it, with a reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import require_artifacts
from jupyterlab_bigmaac import paths
from jupyterlab_bigmaac.swapdir import ram_filesystem

SHM_SWAP = Path("/dev/shm") / f"bigmaac-pytest-{os.getpid()}" / "swap"

CASES = {
    "disabled": ({"enabled": False}, "disabled", "turned off"),
    "invalid-size": ({"min_bigmaac_size": "lots"}, "invalid-setting", "min_bigmaac_size"),
    "missing-library": (
        {"library_path": "/nonexistent/libbigmaac.so"}, "library-missing", "/nonexistent/libbigmaac.so"
    ),
    "ram-backed-swap": ({"swap_dir": str(SHM_SWAP)}, "swap-dir-ram-backed", "tmpfs"),
}


@pytest.fixture(scope="module", autouse=True)
def artifacts():
    require_artifacts()


@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_starts_without_bigmaac_and_says_why(make_server, case):
    config, code, words = CASES[case]
    if case == "ram-backed-swap" and ram_filesystem(Path("/dev/shm")) is None:
        pytest.skip("/dev/shm is not RAM-backed on this machine")
    server = make_server(config)
    kernel = server.start_notebook(f"{case}.ipynb")
    env = kernel.environment("LD_PRELOAD", "BIGMAAC_KERNEL_ID", "BIGMAAC_DIR")
    assert "libbigmaac.so" not in (env["LD_PRELOAD"] or "")
    assert env["BIGMAAC_KERNEL_ID"] is None
    # The kernel works.
    assert kernel.execute("print(6 * 7)").strip() == "42"

    state = server.kernel_state(kernel.id)
    assert state["enabled"] is False
    assert state["reasonCode"] == code
    assert words in state["reason"]
    status = server.json("bigmaac/status")
    assert status["enabledByDefault"] is False and status["reasonCode"] == code
    if case == "missing-library":
        assert status["libraryFound"] is False
    if case == "ram-backed-swap":
        assert not SHM_SWAP.parent.exists(), "a refused RAM-backed swap dir must not be created"
    kernel.shutdown()


def test_server_preload_is_not_passed_on_when_disabled(make_server):
    """A server itself started under the preload does not hand it to a disabled kernel."""
    server = make_server({"enabled": False})
    inherited = f"/lib/nothing-here.so:{paths.BUNDLED_LIBRARY}"
    server.stop()
    server.env["LD_PRELOAD"] = inherited
    server.start()
    kernel = server.start_notebook("inherited.ipynb")
    env = kernel.environment("LD_PRELOAD")
    assert env["LD_PRELOAD"] == "/lib/nothing-here.so"
    kernel.shutdown()
