"""Settings resolution, size parsing and LD_PRELOAD handling, on the real filesystem."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from jupyterlab_bigmaac.provisioner import append_preload, remove_library
from jupyterlab_bigmaac.settings import BigMaac, parse_size, resolve
from jupyterlab_bigmaac.swapdir import SwapDirError, prepare_swap_dir, ram_filesystem
from jupyterlab_bigmaac.user_settings import parse_user_settings


@pytest.mark.parametrize(
    "text, expected",
    [("1048576", 1 << 20), ("64M", 64 << 20), ("64m", 64 << 20), ("2G", 2 << 30),
     ("1k", 1024), (" 3T ", 3 << 40)],
)
def test_parse_size_accepts_bytes_and_suffixes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "64MB", "-1M", "0", "1.5G", "M"])
def test_parse_size_rejects_malformed_sizes(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_append_preload_keeps_other_entries_and_adds_ours_once():
    ours = "/opt/bigmaac/libbigmaac.so"
    assert append_preload("", ours) == ours
    assert append_preload("/lib/a.so", ours) == f"/lib/a.so:{ours}"
    assert append_preload("/lib/a.so /lib/b.so", ours) == f"/lib/a.so:/lib/b.so:{ours}"
    assert append_preload(f"/lib/a.so:{ours}", ours) == f"/lib/a.so:{ours}"
    # An older copy of the library is replaced, never loaded twice.
    assert append_preload("/old/libbigmaac.so:/lib/a.so", ours) == f"/lib/a.so:{ours}"


def test_remove_library_strips_only_ours():
    env = {"LD_PRELOAD": "/lib/a.so:/x/libbigmaac.so"}
    remove_library(env)
    assert env["LD_PRELOAD"] == "/lib/a.so"
    env = {"LD_PRELOAD": "/x/libbigmaac.so"}
    remove_library(env)
    assert "LD_PRELOAD" not in env


@pytest.fixture
def library(disk_tmp):
    path = disk_tmp / "libbigmaac.so"
    path.write_bytes(b"\x7fELF not really")
    return path


def admin(library: Path, swap_dir: Path, **traits) -> BigMaac:
    return BigMaac(library_path=str(library), swap_dir=str(swap_dir), **traits)


def test_resolution_order_notebook_over_user_over_admin(library, disk_tmp):
    config = admin(library, disk_tmp / "swap-order", min_bigmaac_size="32M")
    assert resolve(config).settings.min_bigmaac_size == "32M"
    chosen = resolve(config, notebook={"min_bigmaac_size": "8M"}, user={"min_bigmaac_size": "16M"})
    assert chosen.settings.min_bigmaac_size == "8M"
    assert chosen.sources["min_bigmaac_size"] == "notebook"
    chosen = resolve(config, user={"min_bigmaac_size": "16M"})
    assert (chosen.settings.min_bigmaac_size, chosen.sources["min_bigmaac_size"]) == ("16M", "user")
    off = resolve(config, notebook={"enabled": False})
    assert not off.enabled and off.reason_code == "disabled"


def test_locked_admin_value_wins(library, disk_tmp):
    config = admin(library, disk_tmp / "swap-locked", enabled=True, locked=["enabled"])
    chosen = resolve(config, notebook={"enabled": False})
    assert chosen.enabled and chosen.sources["enabled"] == "admin (locked)"


def test_invalid_values_turn_bigmaac_off_with_a_reason(library, disk_tmp):
    config = admin(library, disk_tmp / "swap-invalid", min_bigmaac_size="lots")
    result = resolve(config)
    assert not result.enabled and result.reason_code == "invalid-setting"
    assert "min_bigmaac_size" in result.reason and "lots" in result.reason
    result = resolve(admin(library, disk_tmp / "swap-invalid"), notebook={"enabled": "yes"})
    assert not result.enabled and result.reason_code == "invalid-setting"


BELOW_THE_FLOOR = "is below the minimum of 4096 bytes (4K)"


def test_every_layer_has_the_same_disk_backed_floor(library, disk_tmp):
    config = admin(library, disk_tmp / "swap-floor")
    for layers in ({"notebook": {"min_bigmaac_size": "1K"}}, {"user": {"min_bigmaac_size": "4095"}}):
        result = resolve(config, **layers)
        assert not result.enabled and result.reason_code == "invalid-setting"
        assert result.reason.startswith("min_bigmaac_size:") and BELOW_THE_FLOOR in result.reason
    result = resolve(admin(library, disk_tmp / "swap-floor", min_bigmaac_size="2K"))
    assert result.reason_code == "invalid-setting" and "'2K' " + BELOW_THE_FLOOR in result.reason
    assert resolve(config, notebook={"min_bigmaac_size": "4K"}).enabled
    problems = parse_user_settings(Path("settings"), '{"minBigmaacSize": "1K"}').problems
    assert problems == ["user setting minBigmaacSize ignored: '1K' " + BELOW_THE_FLOOR]


def test_missing_library_turns_bigmaac_off(disk_tmp):
    result = resolve(admin(disk_tmp / "nowhere" / "libbigmaac.so", disk_tmp / "swap-nolib"))
    assert not result.enabled and result.reason_code == "library-missing"
    assert "nowhere" in result.reason


def test_swap_dir_is_created_private(library, disk_tmp):
    swap = disk_tmp / "new-parent" / "swap"
    result = resolve(admin(library, swap))
    assert result.enabled, result.reason
    assert result.settings.swap_dir == str(swap)
    for directory in (swap, swap.parent):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700


@pytest.mark.skipif(ram_filesystem(Path("/dev/shm")) is None, reason="/dev/shm is not RAM-backed here")
def test_ram_backed_swap_dir_is_refused_and_left_alone():
    target = Path("/dev/shm") / f"bigmaac-pytest-{os.getpid()}" / "swap"
    with pytest.raises(SwapDirError) as refused:
        prepare_swap_dir(target)
    assert refused.value.code == "swap-dir-ram-backed"
    assert "tmpfs" in str(refused.value)
    assert not target.parent.exists()


def test_unwritable_swap_dir_is_refused(disk_tmp):
    blocker = disk_tmp / "a-file"
    blocker.write_text("")
    with pytest.raises(SwapDirError) as refused:
        prepare_swap_dir(blocker / "swap")
    assert refused.value.code == "swap-dir-unusable"


def test_relative_swap_dir_is_refused():
    with pytest.raises(SwapDirError) as refused:
        prepare_swap_dir(Path("relative/swap"))
    assert refused.value.code == "swap-dir-invalid"


def test_symlinked_swap_dir_is_refused_not_followed(disk_tmp):
    target = disk_tmp / "symlink-target"
    target.mkdir()
    os.chmod(target, 0o755)
    link = disk_tmp / "symlink-swap"
    link.symlink_to(target)
    with pytest.raises(SwapDirError) as refused:
        prepare_swap_dir(link)
    assert refused.value.code == "swap-dir-unusable" and "symbolic link" in str(refused.value)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755


def test_dotdot_in_swap_dir_is_refused(disk_tmp):
    with pytest.raises(SwapDirError) as refused:
        prepare_swap_dir(disk_tmp / "a" / ".." / "b")
    assert refused.value.code == "swap-dir-invalid"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make another user's directory")
def test_another_users_shared_swap_dir_is_refused(disk_tmp):
    shared = disk_tmp / "shared-scratch"
    shared.mkdir()
    os.chown(shared, 65534, 65534)
    os.chmod(shared, 0o777)
    with pytest.raises(SwapDirError) as refused:
        prepare_swap_dir(shared)
    assert "another user" in str(refused.value)
    os.chmod(shared, 0o1777)  # with the sticky bit, as /var/tmp: accepted
    assert prepare_swap_dir(shared) == shared


def test_fries_not_below_the_big_threshold_turn_only_the_fries_off(library, disk_tmp):
    config = admin(library, disk_tmp / "swap-fries", min_fry_size="1M")
    result = resolve(config, notebook={"min_bigmaac_size": "512K"})
    assert result.enabled and result.settings.min_fry_size == "0"
    assert "min_fry_size 1M" in result.warnings[0] and "fries tier is off" in result.warnings[0]
    result = resolve(config)
    assert result.enabled and result.settings.min_fry_size == "1M" and result.warnings == []


def test_invalid_admin_disk_full_choice_turns_bigmaac_off_with_a_reason(library, disk_tmp):
    result = resolve(admin(library, disk_tmp / "swap-full", on_disk_full="maybe"))
    assert not result.enabled and result.reason_code == "invalid-setting"
    assert "on_disk_full" in result.reason and "maybe" in result.reason
