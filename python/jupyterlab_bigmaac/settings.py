"""What BigMaac settings a kernel starts with, and why it may start without.

Resolution order for each setting, highest first:
  1. a value the admin locked (`BigMaac.locked`),
  2. the notebook's own choice (metadata or the server-side toggle registry),
  3. the user's settings,
  4. the admin's configured value, else the built-in default.
Layers 2 and 3 arrive as plain mappings from the caller; this module only
validates and orders them, so a value from the browser never reaches a kernel
unchecked.
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
# Names a notebook or user layer may set; anything else in a layer is ignored.
LAYERED_SETTINGS = ("enabled", "min_bigmaac_size")


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


def parse_size(text: str) -> int:
    """Bytes in `text` ("1048576", "64M", "2g"); ValueError when malformed or zero."""
    match = SIZE_PATTERN.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size (use bytes or a number with K, M, G or T)")
    size = int(match.group(1)) << SIZE_SHIFTS[match.group(2).upper()]
    if size <= 0:
        raise ValueError(f"{text!r} must be greater than zero")
    return size


@dataclass
class KernelSettings:
    """The settings one kernel launch uses (what the environment will carry)."""

    enabled: bool
    min_bigmaac_size: str
    swap_dir: str
    library: str

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

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "reason": self.reason,
            "reasonCode": self.reason_code,
            "settings": self.settings.to_json(),
            "sources": dict(self.sources),
        }


def resolve(
    admin: BigMaac,
    notebook: Mapping[str, Any] | None = None,
    user: Mapping[str, Any] | None = None,
) -> Resolution:
    """Merge the layers, validate the result, and prepare the swap directory.

    Never raises: any problem becomes a disabled Resolution with a reason.
    """
    values, sources = _merge(admin, notebook or {}, user or {})
    enabled = values["enabled"]
    settings = KernelSettings(
        enabled=enabled is True,
        min_bigmaac_size=str(values["min_bigmaac_size"]),
        swap_dir=str(admin.swap_directory()),
        library=str(admin.library()),
    )
    try:
        if not isinstance(enabled, bool):
            raise _Off("invalid-setting", f"enabled: {enabled!r} is not true or false")
        _validate(settings)
    except _Off as off:
        return Resolution(False, settings, str(off), off.code, sources)
    return Resolution(True, settings, sources=sources)


class _Off(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _merge(admin: BigMaac, notebook: Mapping[str, Any], user: Mapping[str, Any]):
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in LAYERED_SETTINGS:
        values[name], sources[name] = getattr(admin, name), "admin"
        if name in admin.locked:
            sources[name] = "admin (locked)"
            continue
        for layer_name, layer in (("notebook", notebook), ("user", user)):
            if layer.get(name) is not None:
                values[name], sources[name] = layer[name], layer_name
                break
    return values, sources


def _validate(settings: KernelSettings) -> None:
    """Raise _Off with the first reason the kernel cannot use BigMaac."""
    if not settings.enabled:
        raise _Off("disabled", "BigMaac is turned off for this kernel")
    try:
        parse_size(settings.min_bigmaac_size)
    except ValueError as error:
        raise _Off("invalid-setting", f"min_bigmaac_size: {error}") from None
    library = Path(settings.library)
    if not library.is_file():
        raise _Off("library-missing", f"the BigMaac library was not found at {library}")
    if not os.access(library, os.R_OK):
        raise _Off("library-missing", f"the BigMaac library at {library} is not readable")
    try:
        settings.swap_dir = str(prepare_swap_dir(Path(settings.swap_dir)))
    except SwapDirError as error:
        raise _Off(error.code, str(error)) from None
