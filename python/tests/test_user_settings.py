"""The user's saved JupyterLab settings as the third layer of a kernel's settings.

Admin lock > notebook toggle > user settings > admin config. A bad user value
is ignored with a reason; the kernel always starts.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from conftest import require_artifacts
from jupyterlab_bigmaac import paths
from jupyterlab_bigmaac.swapdir import ram_filesystem

ENV_NAMES = (
    "LD_PRELOAD", "BIGMAAC_MIN_BIGMAAC_SIZE", "BIGMAAC_MIN_FRY_SIZE", "BIGMAAC_ON_DISK_FULL",
    "BIGMAAC_DIR", "BIGMAAC_KERNEL_ID",
)


@pytest.fixture(scope="module")
def server(make_server):
    require_artifacts()
    return make_server()


@pytest.fixture
def settings(server):
    """Write the user's settings file for one test; remove it afterwards."""
    yield server.write_user_settings
    server.user_settings_file.unlink(missing_ok=True)


def preloaded(env) -> bool:
    return str(paths.BUNDLED_LIBRARY) in (env["LD_PRELOAD"] or "").split(":")


def test_saved_settings_reach_the_kernel_environment(server, settings):
    swap = server.home / "user-swap" / "inner"
    settings(
        "// Saved by JupyterLab's settings editor\n"
        "{\n"
        '  "minBigmaacSize": "48M",  // bigger than the default\n'
        '  "minFrySize": "1M",\n'
        '  "onDiskFull": "ram",\n'
        f'  "swapDir": "{swap}",\n'
        '  /* policy keys are the agent\'s */ "autoPageout": "never",\n'
        "}\n"
    )
    kernel = server.start_notebook("user.ipynb")
    env = kernel.environment(*ENV_NAMES)
    assert preloaded(env)
    assert env["BIGMAAC_MIN_BIGMAAC_SIZE"] == "48M"
    assert env["BIGMAAC_MIN_FRY_SIZE"] == "1M"
    assert env["BIGMAAC_ON_DISK_FULL"] == "ram"
    assert env["BIGMAAC_DIR"] == str(swap)
    for directory in (swap, swap.parent):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    state = server.kernel_state(kernel.id)
    assert state["enabled"] is True and state["warnings"] == []
    for name in ("min_bigmaac_size", "min_fry_size", "on_disk_full", "swap_dir"):
        assert state["sources"][name] == "user", state["sources"]
    assert state["sources"]["enabled"] == "admin"
    status = server.json("bigmaac/status")
    assert status["userSettings"]["found"] is True
    assert status["userSettings"]["path"] == str(server.user_settings_file)
    assert status["minBigmaacSize"] == "48M"
    kernel.shutdown()


def test_settings_saved_through_jupyterlab_reach_the_kernel(server, settings):
    """As the Settings Editor saves them: JupyterLab's settings API writes the file."""
    raw = '{\n  // from the Settings Editor\n  "minBigmaacSize": "44M",\n  "onDiskFull": "ram"\n}'
    response = server.request("PUT", "lab/api/settings/jupyterlab-bigmaac:settings", json={"raw": raw})
    assert response.status_code == 204, f"{response.status_code} {response.text}"
    assert server.user_settings_file.is_file()
    kernel = server.start_notebook("editor.ipynb")
    env = kernel.environment(*ENV_NAMES)
    assert env["BIGMAAC_MIN_BIGMAAC_SIZE"] == "44M" and env["BIGMAAC_ON_DISK_FULL"] == "ram"
    kernel.shutdown()


def test_without_a_settings_file_the_admin_values_apply(server):
    kernel = server.start_notebook("nofile.ipynb")
    env = kernel.environment(*ENV_NAMES)
    assert env["BIGMAAC_MIN_BIGMAAC_SIZE"] == "32M" and env["BIGMAAC_MIN_FRY_SIZE"] is None
    assert env["BIGMAAC_ON_DISK_FULL"] == "fail" and env["BIGMAAC_DIR"] == str(server.swap_dir)
    assert server.json("bigmaac/status")["userSettings"]["found"] is False
    kernel.shutdown()


def test_a_changed_setting_applies_at_the_next_restart(server, settings):
    settings('{"minBigmaacSize": "40M"}')
    kernel = server.start_notebook("changing.ipynb")
    assert kernel.environment(*ENV_NAMES)["BIGMAAC_MIN_BIGMAAC_SIZE"] == "40M"
    settings('{"minBigmaacSize": "24M", "enabled": true}')
    kernel.restart()
    assert kernel.environment(*ENV_NAMES)["BIGMAAC_MIN_BIGMAAC_SIZE"] == "24M"
    settings('{"enabled": false}')
    kernel.restart()
    env = kernel.environment(*ENV_NAMES)
    assert not preloaded(env) and env["BIGMAAC_KERNEL_ID"] is None
    state = server.kernel_state(kernel.id)
    assert state["enabled"] is False and state["reasonCode"] == "disabled"
    assert state["sources"]["enabled"] == "user"
    kernel.shutdown()


def test_the_notebook_toggle_beats_the_user_settings(server, settings):
    settings('{"enabled": false, "minBigmaacSize": "40M"}')
    toggle = {"enabled": True, "min_bigmaac_size": "56M"}
    put = server.request("PUT", "bigmaac/notebooks", params={"path": "mine.ipynb"}, json=toggle)
    assert put.status_code == 200, put.text
    kernel = server.start_notebook("mine.ipynb")
    env = kernel.environment(*ENV_NAMES)
    assert preloaded(env) and env["BIGMAAC_MIN_BIGMAAC_SIZE"] == "56M"
    state = server.kernel_state(kernel.id)
    assert state["sources"]["enabled"] == state["sources"]["min_bigmaac_size"] == "notebook toggle"
    kernel.shutdown()
    server.request("DELETE", "bigmaac/notebooks", params={"path": "mine.ipynb"})


@pytest.mark.parametrize(
    "text, problem",
    [
        ('{"minBigmaacSize": "lots"}', "minBigmaacSize"),
        ('{"minBigmaacSize": "1K"}', "below the minimum"),
        ('{"minFrySize": "tiny"}', "minFrySize"),
        ('{"onDiskFull": "maybe"}', "onDiskFull"),
        ('{"enabled": "yes"}', "enabled"),
        ('{"swapDir": "relative/swap"}', "not an absolute path"),
        ('{"autoPageoutIdleSeconds": 0}', "autoPageoutIdleSeconds"),
        ("{ this is not json5", "not valid JSON5"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_an_invalid_user_value_is_ignored_with_a_reason(server, settings, text, problem):
    settings(text)
    kernel = server.start_notebook("invalid.ipynb")
    env = kernel.environment(*ENV_NAMES)
    # The kernel starts, with BigMaac, on the admin's values.
    assert preloaded(env)
    assert env["BIGMAAC_MIN_BIGMAAC_SIZE"] == "32M" and env["BIGMAAC_MIN_FRY_SIZE"] is None
    assert env["BIGMAAC_ON_DISK_FULL"] == "fail" and env["BIGMAAC_DIR"] == str(server.swap_dir)
    state = server.kernel_state(kernel.id)
    assert state["enabled"] is True and state["reason"] == ""
    assert any(problem in warning for warning in state["warnings"]), state["warnings"]
    status = server.json("bigmaac/status")
    assert any(problem in p for p in status["userSettings"]["problems"]), status["userSettings"]
    kernel.shutdown()


def test_a_fries_threshold_not_below_the_big_one_turns_only_the_fries_off(server, settings):
    # Within the user's own settings: minFrySize is ignored.
    settings('{"minBigmaacSize": "16M", "minFrySize": "16M"}')
    kernel = server.start_notebook("fries.ipynb")
    env = kernel.environment(*ENV_NAMES)
    assert preloaded(env)
    assert env["BIGMAAC_MIN_BIGMAAC_SIZE"] == "16M" and env["BIGMAAC_MIN_FRY_SIZE"] is None
    warnings = server.kernel_state(kernel.id)["warnings"]
    assert any("minFrySize" in w and "not below minBigmaacSize" in w for w in warnings), warnings
    # Against another layer's threshold (the admin's 32M): the tier is off at launch.
    settings('{"minFrySize": "40M"}')
    kernel.restart()
    env = kernel.environment(*ENV_NAMES)
    assert preloaded(env) and env["BIGMAAC_MIN_FRY_SIZE"] is None
    warnings = server.kernel_state(kernel.id)["warnings"]
    assert any("min_fry_size 40M (from user)" in w and "fries tier is off" in w for w in warnings), warnings
    # Below it, the tier is on.
    settings('{"minFrySize": "2M"}')
    kernel.restart()
    assert kernel.environment(*ENV_NAMES)["BIGMAAC_MIN_FRY_SIZE"] == "2M"
    assert server.kernel_state(kernel.id)["warnings"] == []
    kernel.shutdown()


@pytest.mark.skipif(ram_filesystem(Path("/dev/shm")) is None, reason="/dev/shm is not RAM-backed here")
def test_a_ram_backed_user_swap_dir_starts_the_kernel_without_bigmaac(server, settings):
    target = Path("/dev/shm") / f"bigmaac-pytest-user-{os.getpid()}" / "swap"
    settings(f'{{"swapDir": "{target}"}}')
    kernel = server.start_notebook("ramswap.ipynb")
    assert not preloaded(kernel.environment(*ENV_NAMES))
    assert kernel.execute("print(6 * 7)").strip() == "42"
    state = server.kernel_state(kernel.id)
    assert state["enabled"] is False and state["reasonCode"] == "swap-dir-ram-backed"
    assert state["sources"]["swap_dir"] == "user" and "tmpfs" in state["reason"]
    assert not target.parent.exists()
    kernel.shutdown()


def test_a_symlinked_user_swap_dir_is_refused(server, settings):
    real = server.home / "elsewhere"
    real.mkdir()
    link = server.home / "swap-link"
    link.symlink_to(real)
    settings(f'{{"swapDir": "{link}"}}')
    kernel = server.start_notebook("symlink.ipynb")
    assert not preloaded(kernel.environment(*ENV_NAMES))
    state = server.kernel_state(kernel.id)
    assert state["reasonCode"] == "swap-dir-unusable" and "symbolic link" in state["reason"]
    kernel.shutdown()


def test_admin_locks_beat_the_user_settings(make_server):
    server = make_server({"min_bigmaac_size": "36M", "locked": ["min_bigmaac_size", "swap_dir", "enabled"]})
    server.write_user_settings(
        f'{{"minBigmaacSize": "8M", "swapDir": "{server.home / "mine"}", "enabled": false, "onDiskFull": "ram"}}'
    )
    kernel = server.start_notebook("locked.ipynb")
    env = kernel.environment(*ENV_NAMES)
    assert preloaded(env)
    assert env["BIGMAAC_MIN_BIGMAAC_SIZE"] == "36M" and env["BIGMAAC_DIR"] == str(server.swap_dir)
    # What is not locked still follows the user.
    assert env["BIGMAAC_ON_DISK_FULL"] == "ram"
    sources = server.kernel_state(kernel.id)["sources"]
    assert sources["min_bigmaac_size"] == sources["swap_dir"] == sources["enabled"] == "admin (locked)"
    assert sources["on_disk_full"] == "user"
    assert not (server.home / "mine").exists()
    kernel.shutdown()
