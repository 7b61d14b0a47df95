"""Checks that a swap directory can actually take memory off RAM.

A directory on tmpfs or ramfs (/dev/shm, a Kubernetes memory emptyDir) holds
its files in RAM, so disk-backing allocations there saves nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat
from pathlib import Path

# statfs(2) f_type values of filesystems whose files live in RAM.
RAM_FILESYSTEM_MAGICS = {
    0x01021994: "tmpfs",
    0x858458F6: "ramfs",
}
RAM_FILESYSTEM_NAMES = {"tmpfs", "ramfs", "devtmpfs"}

PRIVATE_DIR_MODE = 0o700


class SwapDirError(Exception):
    """The swap directory cannot be used; `code` says why for the machine."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def default_swap_dir(env: dict[str, str] | os._Environ[str] | None = None) -> Path:
    """$XDG_CACHE_HOME/bigmaac/swap, else ~/.cache/bigmaac/swap (as the library does)."""
    env = os.environ if env is None else env
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "bigmaac" / "swap"


def prepare_swap_dir(path: Path, create: bool = True) -> Path:
    """Create `path` (0700) when missing and check it is a private, writable
    directory on a disk. The same checks apply whoever chose the path.

    With `create` false nothing is made: a missing directory is checked only
    as far as it exists (the filesystem it would be made on), for readers
    such as the status, which must not change anything.

    Returns the absolute path; raises SwapDirError otherwise.
    """
    path = Path(path).expanduser()
    if not path.is_absolute():
        raise SwapDirError("swap-dir-invalid", f"swap directory {str(path)!r} is not an absolute path")
    if ".." in path.parts:
        raise SwapDirError("swap-dir-invalid", f"swap directory {str(path)!r} contains '..'")
    # Check the filesystem before creating anything, so a refused RAM-backed
    # location is left untouched.
    _refuse_ram(path, _nearest_existing(path))
    if not create and not os.path.lexists(path):
        return path  # made, with every check, when a kernel starts
    try:
        _make_private_dirs(path)
    except OSError as error:
        raise SwapDirError(
            "swap-dir-unusable", f"cannot create swap directory {path}: {error.strerror}"
        ) from error
    descriptor = _open_directory(path)
    try:
        _check_ownership(path, os.fstat(descriptor))
        # A symlink higher up may have led somewhere else than first checked.
        _refuse_ram(path, Path(f"/proc/self/fd/{descriptor}"))
    finally:
        os.close(descriptor)
    if not os.access(path, os.W_OK | os.X_OK):
        raise SwapDirError("swap-dir-unusable", f"swap directory {path} is not writable")
    return path


def _refuse_ram(path: Path, probe: Path) -> None:
    fstype = ram_filesystem(probe)
    if fstype:
        raise SwapDirError(
            "swap-dir-ram-backed",
            f"swap directory {path} is on {fstype}, which keeps files in RAM; "
            "choose a directory on a disk",
        )


def _open_directory(path: Path) -> int:
    """An fd of `path` itself: a symlink in its place is refused, not followed."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        if os.path.islink(path):
            raise SwapDirError("swap-dir-unusable", f"swap directory {path} is a symbolic link") from None
        if error.errno == errno.ENOTDIR:
            raise SwapDirError("swap-dir-unusable", f"swap directory {path} is not a directory") from None
        raise SwapDirError(
            "swap-dir-unusable", f"cannot open swap directory {path}: {error.strerror}"
        ) from None


def _check_ownership(path: Path, info: os.stat_result) -> None:
    # Someone else's directory that others may write into without the sticky
    # bit lets them rename or replace what is inside.
    shared = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX
    if info.st_uid != os.geteuid() and shared:
        raise SwapDirError(
            "swap-dir-unusable",
            f"swap directory {path} belongs to another user and others can write to it",
        )


def nearest_existing(path: Path) -> Path:
    """`path`, or its closest ancestor that exists: the filesystem it is or would be on."""
    return _nearest_existing(path)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _make_private_dirs(path: Path) -> None:
    # Only the directories we create get 0700: an admin's existing shared
    # scratch directory keeps its mode (the library's files are unlinked anyway).
    missing = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue
        # mkdir's mode is masked by the umask; chmod through an fd of the
        # directory we just made, never through a name someone could swap.
        descriptor = _open_directory(directory)
        try:
            os.fchmod(descriptor, PRIVATE_DIR_MODE)
        finally:
            os.close(descriptor)


def ram_filesystem(path: Path) -> str | None:
    """The name of the RAM-backed filesystem holding `path`, or None if on disk."""
    magic = _statfs_type(path)
    if magic is not None:
        return RAM_FILESYSTEM_MAGICS.get(magic)
    fstype = _mountinfo_type(path)
    return fstype if fstype in RAM_FILESYSTEM_NAMES else None


class _StatFs(ctypes.Structure):
    # Only f_type (the first field, a word on every Linux ABI) is read;
    # the padding covers the rest of struct statfs.
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 256)]


def _statfs_type(path: Path) -> int | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buffer = _StatFs()
        if libc.statfs(os.fsencode(str(path)), ctypes.byref(buffer)) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return buffer.f_type & 0xFFFFFFFF


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding `path` ("ext4", "xfs", ...), or None if unknown."""
    return _mountinfo_type(path)


def _mountinfo_type(path: Path) -> str | None:
    """Filesystem type of the longest mount point containing `path`."""
    target = os.path.realpath(path)
    best, best_type = "", None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
            for line in mounts:
                left, _, right = line.partition(" - ")
                mount_point = left.split()[4].replace("\\040", " ")
                inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best):
                    best, best_type = mount_point, right.split()[0]
    except (OSError, IndexError):
        return None
    return best_type
