"""What BigMaac settings a kernel starts with, and why it may start without.

Resolution order for each setting, highest first:
  1. a value the admin locked (`BigMaac.locked`),
  2. the notebook's own choice (metadata or the server-side toggle registry),
  3. the user's settings,
  4. the admin's configured value, else the built-in default.
Layers 2 and 3 arrive as plain mappings from the caller (notebooks.py,
user_settings.py); this module validates and orders them, so a value from the
browser never reaches a kernel unchecked.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from traitlets import Bool, List, Unicode
from traitlets.config import LoggingConfigurable

from . import paths
from .swapdir import SwapDirError, default_swap_dir, prepare_swap_dir

SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*([KMGT]?)\s*$", re.IGNORECASE)
SIZE_SHIFTS = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
# Names the user layer may set (and the admin lock); anything else in a layer is ignored.
LAYERED_SETTINGS = ("enabled", "min_bigmaac_size", "min_fry_size", "swap_dir", "on_disk_full")
# The subset a notebook may vary: where swap files go stays the user's or admin's choice.
NOTEBOOK_SETTINGS = ("enabled", "min_bigmaac_size")
DISK_FULL_CHOICES = ("fail", "ram")
# Below a page every small allocation would get a file mapping of its own; the
# same floor holds for every layer (schema/settings.json says 4K too).
MIN_BIGMAAC_BYTES = 4096


class BigMaac(LoggingConfigurable):
    """Admin configuration of BigMaac for kernels started by this server.

    Set from any Jupyter server config file, for example
    ``c.BigMaac.min_bigmaac_size = "64M"``.
    """

    enabled = Bool(True, config=True, help="Start new kernels with disk-backed memory.")

    min_bigmaac_size = Unicode(
        "32M",
        config=True,
        help="Allocations of at least this size go to disk: bytes, or a number with "
        "K, M, G or T (powers of 1024).",
    )

    min_fry_size = Unicode(
        "0",
        config=True,
        help="Allocations of at least this size (and below min_bigmaac_size) use the fries "
        "tier; 0 turns the tier off.",
    )

    # A Unicode rather than an Enum: a bad value turns BigMaac off with a reason
    # at launch (like a bad size) instead of stopping the server from loading us.
    on_disk_full = Unicode(
        "fail",
        config=True,
        help="When the swap disk is full: 'fail' the allocation (NULL/MemoryError), or "
        "'ram' to fall back to ordinary memory.",
    )

    swap_dir = Unicode(
        "",
        config=True,
        help="Directory for the (unlinked) swap files. Must be on a disk, not tmpfs. "
        "Empty: $XDG_CACHE_HOME/bigmaac/swap or ~/.cache/bigmaac/swap, created 0700.",
    )

    library_path = Unicode(
        "",
        config=True,
        help="Path of libbigmaac.so. Empty: $BIGMAAC_LIBRARY, else the bundled library.",
    )

    node_path = Unicode(
        "",
        config=True,
        help="The Node executable that runs the agent. Empty: $BIGMAAC_NODE, else `node` on PATH.",
    )

    locked = List(
        Unicode(),
        default_value=[],
        config=True,
        help=f"Settings that notebooks and users cannot override; any of {list(LAYERED_SETTINGS)}.",
    )

    def library(self) -> Path:
        return Path(self.library_path) if self.library_path else paths.library_path()

    def node(self) -> str | None:
        if self.node_path:
            return paths.find_node({"BIGMAAC_NODE": self.node_path})
        return paths.find_node()

    def swap_directory(self) -> Path:
        return Path(self.swap_dir).expanduser() if self.swap_dir else default_swap_dir()

    def default_value(self, name: str) -> Any:
        """The admin's value of a layered setting; the swap dir with its default filled in."""
        return str(self.swap_directory()) if name == "swap_dir" else getattr(self, name)


def parse_size(text: str, allow_zero: bool = False) -> int:
    """Bytes in `text` ("1048576", "64M", "2g"); ValueError when malformed or zero
    (unless `allow_zero`)."""
    match = SIZE_PATTERN.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size (use bytes or a number with K, M, G or T)")
    size = int(match.group(1)) << SIZE_SHIFTS[match.group(2).upper()]
    if size <= 0 and not allow_zero:
        raise ValueError(f"{text!r} must be greater than zero")
    return size


def parse_min_bigmaac_size(text: str) -> int:
    """Bytes in a disk-backed threshold; ValueError when malformed or below the floor.

    The one check of `min_bigmaac_size` for every layer (admin, notebook
    metadata, notebook toggle, user settings), so all give the same reason.
    """
    size = parse_size(text)
    if size < MIN_BIGMAAC_BYTES:
        raise ValueError(f"{str(text).strip()!r} is below the minimum of {MIN_BIGMAAC_BYTES} bytes (4K)")
    return size


@dataclass
class KernelSettings:
    """The settings one kernel launch uses (what the environment will carry)."""

    enabled: bool
    min_bigmaac_size: str
    swap_dir: str
    library: str
    min_fry_size: str = "0"
    on_disk_full: str = "fail"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Resolution:
    """Outcome of resolving a launch: on, or off with a reason."""

    enabled: bool
    settings: KernelSettings
    reason: str = ""
    reason_code: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    # Values that were ignored (the kernel used the next layer's), each with why.
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "reason": self.reason,
            "reasonCode": self.reason_code,
            "warnings": list(self.warnings),
            "settings": self.settings.to_json(),
            "sources": dict(self.sources),
        }


def resolve(
    admin: BigMaac,
    notebook: Mapping[str, Any] | None = None,
    user: Mapping[str, Any] | None = None,
    warnings: list[str] | None = None,
    create_swap_dir: bool = True,
) -> Resolution:
    """Merge the layers, validate the result, and prepare the swap directory.

    `warnings` are problems the caller already found in its layers (ignored
    values); they are carried into the Resolution. With `create_swap_dir`
    false a missing swap directory is checked but not made (for readers).
    Never raises: any problem becomes a disabled Resolution with a reason.
    Blocking: the swap directory may be on a slow filesystem.
    """
    values, sources = _merge(admin, notebook or {}, user or {})
    warnings = list(warnings or [])
    enabled = values["enabled"]
    settings = KernelSettings(
        enabled=enabled is True,
        min_bigmaac_size=str(values["min_bigmaac_size"]),
        swap_dir=str(values["swap_dir"]),
        library=str(admin.library()),
        min_fry_size=str(values["min_fry_size"]),
        on_disk_full=str(values["on_disk_full"]),
    )
    try:
        if not isinstance(enabled, bool):
            raise _Off("invalid-setting", f"enabled: {enabled!r} is not true or false")
        _validate(settings, sources, warnings, create_swap_dir)
    except _Off as off:
        return Resolution(False, settings, str(off), off.code, sources, warnings)
    return Resolution(True, settings, sources=sources, warnings=warnings)


class _Off(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _merge(admin: BigMaac, notebook: Mapping[str, Any], user: Mapping[str, Any]):
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in LAYERED_SETTINGS:
        values[name], sources[name] = admin.default_value(name), "admin"
        if name in admin.locked:
            sources[name] = "admin (locked)"
            continue
        for layer_name, layer in (("notebook", notebook), ("user", user)):
            if layer.get(name) is not None:
                values[name], sources[name] = layer[name], layer_name
                break
    return values, sources


def _validate(
    settings: KernelSettings, sources: dict[str, str], warnings: list[str], create_swap_dir: bool = True
) -> None:
    """Raise _Off with the first reason the kernel cannot use BigMaac."""
    if not settings.enabled:
        raise _Off("disabled", "BigMaac is turned off for this kernel")
    try:
        bigmaac_size = parse_min_bigmaac_size(settings.min_bigmaac_size)
    except ValueError as error:
        raise _Off("invalid-setting", f"min_bigmaac_size: {error}") from None
    _validate_fries(settings, bigmaac_size, sources, warnings)
    if settings.on_disk_full not in DISK_FULL_CHOICES:
        raise _Off("invalid-setting", f"on_disk_full: {settings.on_disk_full!r} is not 'fail' or 'ram'")
    library = Path(settings.library)
    if not library.is_file():
        raise _Off("library-missing", f"the BigMaac library was not found at {library}")
    if not os.access(library, os.R_OK):
        raise _Off("library-missing", f"the BigMaac library at {library} is not readable")
    try:
        settings.swap_dir = str(prepare_swap_dir(Path(settings.swap_dir), create=create_swap_dir))
    except SwapDirError as error:
        raise _Off(error.code, str(error)) from None


def _validate_fries(
    settings: KernelSettings, bigmaac_size: int, sources: dict[str, str], warnings: list[str]
) -> None:
    try:
        fry_size = parse_size(settings.min_fry_size, allow_zero=True)
    except ValueError as error:
        raise _Off("invalid-setting", f"min_fry_size: {error}") from None
    if 0 < fry_size and fry_size >= bigmaac_size:
        # Each layer may be valid alone (a notebook lowered min_bigmaac_size
        # below the user's fries threshold): drop the tier, keep BigMaac.
        warnings.append(
            f"min_fry_size {settings.min_fry_size} (from {sources.get('min_fry_size')}) is not below "
            f"min_bigmaac_size {settings.min_bigmaac_size}; the fries tier is off"
        )
        settings.min_fry_size = "0"
