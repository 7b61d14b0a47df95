"""Each notebook's own BigMaac choice: saved metadata plus a server-side registry.

The front end records the toggle of a notebook that is not saved yet (or
whose metadata it has not written) in the registry through
PUT /bigmaac/notebooks?path=...; a saved notebook carries the same keys in
`metadata.bigmaac`. At each launch the provisioner reads both for the
kernel's session path, the registry winning because it is the newer intent.

The kernel's notebook path comes from JPY_SESSION_NAME, which
jupyter_server's session manager puts in every session kernel's environment
and keeps up to date when a session is renamed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from jupyter_core.utils import ensure_async

from .settings import NOTEBOOK_SETTINGS, parse_min_bigmaac_size
from .user_settings import UserSettingsFile

METADATA_KEY = "bigmaac"
SESSION_PATH_VARIABLE = "JPY_SESSION_NAME"
# Enough for any real user; stops a client from growing the server without bound.
MAX_REGISTERED_NOTEBOOKS = 10000
MAX_PATH_LENGTH = 4096
# The saved registry: its format version, and a bound checked before parsing it.
TOGGLES_FILE_VERSION = 1
MAX_TOGGLES_FILE_BYTES = 8 << 20


class InvalidToggle(ValueError):
    """A path or toggle from a client that cannot be accepted; the message says why."""


def normalise_path(path: Any) -> str:
    """The API path `path` in canonical form ("dir/nb.ipynb"); InvalidToggle if unsafe."""
    if not isinstance(path, str) or not path.strip("/"):
        raise InvalidToggle("path: a notebook path is required")
    if len(path) > MAX_PATH_LENGTH or "\0" in path or "\\" in path:
        raise InvalidToggle("path: not a valid notebook path")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InvalidToggle("path: '..' is not allowed")
    if not parts:
        raise InvalidToggle("path: a notebook path is required")
    return "/".join(parts)


def validate_toggle(body: Any) -> dict[str, Any]:
    """The toggle in a client's JSON body, checked key by key; InvalidToggle if not."""
    if not isinstance(body, dict):
        raise InvalidToggle("the body must be a JSON object")
    unknown = sorted(set(body) - set(NOTEBOOK_SETTINGS))
    if unknown:
        raise InvalidToggle(
            f"unknown setting(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(NOTEBOOK_SETTINGS)}"
        )
    toggle: dict[str, Any] = {}
    enabled = body.get("enabled")
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise InvalidToggle(f"enabled: {enabled!r} is not true or false")
        toggle["enabled"] = enabled
    size = body.get("min_bigmaac_size")
    if size is not None:
        if not isinstance(size, str):
            raise InvalidToggle(f"min_bigmaac_size: {size!r} is not a string such as \"64M\"")
        try:
            parse_min_bigmaac_size(size)
        except ValueError as error:
            raise InvalidToggle(f"min_bigmaac_size: {error}") from None
        toggle["min_bigmaac_size"] = size.strip()
    return toggle


class NotebookToggles:
    """Thread-safe map of notebook API path -> toggle set by the front end.

    Once `persist_to` names a file, every change is written there (atomically,
    0600) and the entries survive a server restart.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._toggles: dict[str, dict[str, Any]] = {}
        self._file: Path | None = None
        self._log: Any = None

    def persist_to(self, file: Path, log: Any) -> None:
        """Load the entries saved in `file` and save every later change there."""
        with self._lock:
            self._file, self._log = Path(file), log
            self._toggles = _load_toggles(self._file, log)

    def set(self, path: str, toggle: Mapping[str, Any]) -> None:
        with self._lock:
            if path not in self._toggles and len(self._toggles) >= MAX_REGISTERED_NOTEBOOKS:
                raise InvalidToggle(f"too many notebooks registered (at most {MAX_REGISTERED_NOTEBOOKS})")
            previous = self._toggles.get(path)
            self._toggles[path] = dict(toggle)
            try:
                self._save()
            except InvalidToggle:
                if previous is None:
                    del self._toggles[path]
                else:
                    self._toggles[path] = previous
                raise

    def remove(self, path: str) -> bool:
        with self._lock:
            removed = self._toggles.pop(path, None) is not None
            if removed:
                self._save()
            return removed

    def move(self, old: str, new: str) -> int:
        """A notebook or directory was renamed: its toggles follow it. Returns how many moved."""
        with self._lock:
            moved = {p: _moved_path(p, old, new) for p in self._toggles if _inside(p, old)}
            if not moved:
                return 0
            entries = {p: self._toggles.pop(p) for p in moved}
            for path, toggle in entries.items():
                self._toggles[moved[path]] = toggle
            self._save()
            return len(moved)

    def remove_tree(self, path: str) -> int:
        """A notebook or directory was deleted: forget its toggles. Returns how many went."""
        with self._lock:
            gone = [p for p in self._toggles if _inside(p, path)]
            for entry in gone:
                del self._toggles[entry]
            if gone:
                self._save()
            return len(gone)

    def get(self, path: str) -> dict[str, Any] | None:
        with self._lock:
            toggle = self._toggles.get(path)
            return dict(toggle) if toggle is not None else None

    def all(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {path: dict(toggle) for path, toggle in self._toggles.items()}

    def _save(self) -> None:
        text = json.dumps({"version": TOGGLES_FILE_VERSION, "notebooks": self._toggles}, separators=(",", ":"))
        if len(text) > MAX_TOGGLES_FILE_BYTES:
            raise InvalidToggle(f"the toggle registry is full (at most {MAX_TOGGLES_FILE_BYTES} bytes)")
        if self._file is None:
            return
        try:
            _write_private_atomically(self._file, text)
        except OSError as error:
            # The toggle still holds for this server's lifetime.
            self._log.warning("BigMaac could not save the notebook toggles to %s: %s", self._file, error)


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def _moved_path(path: str, old: str, new: str) -> str:
    return new + path[len(old):]


def _load_toggles(file: Path, log: Any) -> dict[str, dict[str, Any]]:
    """The valid entries of a saved registry; a missing file is empty, a bad one ignored."""
    try:
        with open(file, "rb") as source:
            data = source.read(MAX_TOGGLES_FILE_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as error:
        log.warning("BigMaac ignores the saved notebook toggles %s: %s", file, error.strerror)
        return {}
    try:
        if len(data) > MAX_TOGGLES_FILE_BYTES:
            raise ValueError(f"larger than {MAX_TOGGLES_FILE_BYTES} bytes")
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("version") != TOGGLES_FILE_VERSION:
            raise ValueError(f"not a version {TOGGLES_FILE_VERSION} toggle registry")
        entries = document.get("notebooks")
        if not isinstance(entries, dict) or len(entries) > MAX_REGISTERED_NOTEBOOKS:
            raise ValueError("no valid 'notebooks' map")
        return {normalise_path(path): validate_toggle(toggle) for path, toggle in entries.items()}
    except (ValueError, InvalidToggle) as error:  # InvalidToggle is a ValueError too
        log.warning("BigMaac ignores the saved notebook toggles %s: %s", file, error)
        return {}


def _write_private_atomically(file: Path, text: str) -> None:
    """Write `text` to a 0600 temporary file beside `file`, then rename it over `file`."""
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{file.name}.", dir=file.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as output:  # mkstemp makes it 0600
            output.write(text)
            output.flush()
            os.fsync(output.fileno())
        os.replace(temporary, file)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


notebook_toggles = NotebookToggles()


@dataclass
class ServerContext:
    """What the server extension lends the provisioner (same process)."""

    root_dir: str
    contents_manager: Any
    # The user's settings file where this server's JupyterLab saves it.
    user_settings: UserSettingsFile | None = None


_server_context: ServerContext | None = None


def set_server_context(context: ServerContext | None) -> None:
    global _server_context
    _server_context = context


def server_context() -> ServerContext | None:
    return _server_context


def session_path(env: Mapping[str, str]) -> str | None:
    """The API path of the kernel's notebook, from JPY_SESSION_NAME, or None.

    The session manager sets it to an OS path (root_dir joined with the
    session's directory and name) or, without a name, to the API path itself.
    """
    value = env.get(SESSION_PATH_VARIABLE)
    if not value:
        return None
    if os.path.isabs(value):
        root = _server_context.root_dir if _server_context else None
        if not root:
            return None
        relative = os.path.relpath(os.path.realpath(value), os.path.realpath(root))
        if relative == ".." or relative.startswith("../"):
            return None
        value = relative.replace(os.sep, "/")
    try:
        return normalise_path(value)
    except InvalidToggle:
        return None


@dataclass
class NotebookChoice:
    """The notebook layer of one launch and where each value came from."""

    path: str | None
    values: dict[str, Any]
    origins: dict[str, str]


async def notebook_choice(env: Mapping[str, str], log: Any) -> NotebookChoice:
    """Merge the notebook's saved metadata and its registry entry (registry wins)."""
    path = session_path(env)
    if path is None:
        return NotebookChoice(None, {}, {})
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for origin, layer in (
        ("notebook metadata", await _saved_metadata(path, log)),
        ("notebook toggle", notebook_toggles.get(path) or {}),
    ):
        for name in NOTEBOOK_SETTINGS:
            if layer.get(name) is not None:
                values[name], origins[name] = layer[name], origin
    return NotebookChoice(path, values, origins)


async def _saved_metadata(path: str, log: Any) -> dict[str, Any]:
    """`metadata.bigmaac` of the saved notebook, or {} (unsaved, unreadable, not a notebook)."""
    contents_manager = _server_context.contents_manager if _server_context else None
    if contents_manager is None or not path.endswith(".ipynb"):
        return {}
    try:
        if not await ensure_async(contents_manager.file_exists(path)):
            return {}
        model = await ensure_async(contents_manager.get(path, content=True, type="notebook"))
    except Exception as error:
        log.warning("BigMaac could not read the metadata of %s: %s", path, error)
        return {}
    metadata = (model.get("content") or {}).get("metadata") or {}
    section = metadata.get(METADATA_KEY)
    if not isinstance(section, dict):
        return {}
    # Values are validated by settings.resolve like every layer; other keys are ignored.
    return {name: section[name] for name in NOTEBOOK_SETTINGS if name in section}
