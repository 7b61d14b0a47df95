"""`/bigmaac/status` reports the swap directory's filesystem: free space, size and type."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from conftest import MiB, require_artifacts
from jupyterlab_bigmaac.swapdir import ram_filesystem

# Free space moves while others write to the same disk; the report must be this close.
FREE_TOLERANCE = 256 * MiB


@pytest.fixture(scope="module", autouse=True)
def artifacts():
    require_artifacts()


def _mount_type(path: Path) -> str:
    """The type of the longest mount holding `path`, read here independently of the server."""
    target, best, best_type = os.path.realpath(path), "", ""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        mount_point = left.split()[4]
        if (target == mount_point or target.startswith(mount_point.rstrip("/") + "/")) and len(
            mount_point
        ) >= len(best):
            best, best_type = mount_point, right.split()[0]
    return best_type


def test_status_changes_nothing_and_a_kernel_makes_the_swap_dir(make_server, disk_tmp):
    server = make_server({"swap_dir": str(Path(tempfile.mkdtemp(dir=disk_tmp)) / "later" / "swap")})
    swap_dir = Path(server.json("bigmaac/status")["swapDir"])
    status = server.json("bigmaac/status")
    assert status["enabledByDefault"] is True, status["reason"]
    assert not swap_dir.parent.exists()  # reading the status made nothing
    # The filesystem it will be made on is reported meanwhile.
    assert status["swap"]["dir"] == str(swap_dir) and status["swap"]["free"] > 0
    assert status["swap"]["onRam"] is False
    kernel = server.start_notebook("makes-swap.ipynb")
    assert server.kernel_state(kernel.id)["enabled"] is True
    assert swap_dir.is_dir() and stat.S_IMODE(swap_dir.stat().st_mode) == 0o700
    kernel.shutdown()


def test_status_reports_free_space_of_the_swap_dir(make_server):
    server = make_server({})
    server.swap_dir.mkdir(mode=0o700)
    before = os.statvfs(server.swap_dir)
    swap = server.json("bigmaac/status")["swap"]
    after = os.statvfs(server.swap_dir)
    assert swap["dir"] == str(server.swap_dir)
    assert swap["total"] == before.f_blocks * before.f_frsize
    free_values = [s.f_bavail * s.f_frsize for s in (before, after)]
    assert min(free_values) - FREE_TOLERANCE <= swap["free"] <= max(free_values) + FREE_TOLERANCE
    assert 0 < swap["free"] <= swap["total"]
    assert swap["fsType"] == _mount_type(server.swap_dir)
    assert swap["onRam"] is False


def test_free_space_shrinks_when_the_swap_disk_fills(make_server):
    server = make_server({})
    server.swap_dir.mkdir(mode=0o700)
    first = server.json("bigmaac/status")["swap"]
    filler = server.swap_dir / "filler"
    with open(filler, "wb") as out:
        os.posix_fallocate(out.fileno(), 0, 1024 * MiB)
    try:
        second = server.json("bigmaac/status")["swap"]
    finally:
        filler.unlink()
    # Others may write too; a gigabyte taken must show as most of a gigabyte less.
    assert second["free"] <= first["free"] - (1024 * MiB - FREE_TOLERANCE)


def test_a_missing_swap_dir_on_ram_is_reported_by_its_filesystem(make_server):
    if ram_filesystem(Path("/dev/shm")) is None:
        pytest.skip("/dev/shm is not RAM-backed on this machine")
    # Refused settings leave the directory uncreated; the status names the RAM it would be on.
    missing = Path("/dev/shm") / f"bigmaac-pytest-swap-{os.getpid()}" / "never-created"
    server = make_server({"swap_dir": str(missing)})
    status = server.json("bigmaac/status")
    assert status["reasonCode"] == "swap-dir-ram-backed"
    assert status["swap"]["dir"] == str(missing)
    assert status["swap"]["onRam"] is True and status["swap"]["fsType"] == "tmpfs"
    assert not missing.parent.exists()


def test_a_relative_swap_dir_is_reported_without_numbers(make_server):
    server = make_server({"swap_dir": "relative/swap"})
    status = server.json("bigmaac/status")
    assert status["reasonCode"] == "swap-dir-invalid"
    assert status["swap"] == {"dir": "relative/swap", "free": None, "total": None, "fsType": None, "onRam": None}


def test_swap_dir_on_ram_is_reported_as_such(make_server):
    if ram_filesystem(Path("/dev/shm")) is None:
        pytest.skip("/dev/shm is not RAM-backed on this machine")
    existing = Path("/dev/shm") / f"bigmaac-pytest-swap-ram-{os.getpid()}"
    existing.mkdir(mode=0o700)
    try:
        server = make_server({"swap_dir": str(existing)})
        status = server.json("bigmaac/status")
        expected_total = os.statvfs(existing).f_blocks * os.statvfs(existing).f_frsize
    finally:
        existing.rmdir()
    assert status["reasonCode"] == "swap-dir-ram-backed"
    assert status["swap"]["onRam"] is True
    assert status["swap"]["fsType"] == "tmpfs"
    assert status["swap"]["total"] == expected_total
