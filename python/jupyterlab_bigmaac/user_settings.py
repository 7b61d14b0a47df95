"""The user's own BigMaac settings, as saved by JupyterLab's settings editor.

JupyterLab writes the plugin `jupyterlab-bigmaac:settings` to
`<user-settings-dir>/jupyterlab-bigmaac/settings.jupyterlab-settings` (JSON5,
comments allowed). The server reads that file, and only the keys of the
contract, each checked on its own: a bad value is ignored (the next layer's
value applies) and the reason is kept, so it can be shown with the kernel.
The same file gives the agent's automatic page-out policy (policy.py).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import json5
from jupyter_core.paths import jupyter_config_dir

from .settings import DISK_FULL_CHOICES, parse_min_bigmaac_size, parse_size

PLUGIN_ID = "jupyterlab-bigmaac:settings"
SETTINGS_FILE = Path("jupyterlab-bigmaac") / "settings.jupyterlab-settings"
SETTINGS_DIR_VARIABLE = "JUPYTERLAB_SETTINGS_DIR"
# A settings file is a few hundred bytes; anything much larger is not ours.
MAX_FILE_BYTES = 1 << 20
AUTO_PAGEOUT_CHOICES = ("never", "idle")
MAX_IDLE_SECONDS = 86400
MAX_PRESSURE_PERCENT = 99


def default_settings_dir(env: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """$JUPYTERLAB_SETTINGS_DIR, else <jupyter config dir>/lab/user-settings (as JupyterLab)."""
    env = os.environ if env is None else env
    configured = env.get(SETTINGS_DIR_VARIABLE)
    return Path(configured) if configured else Path(jupyter_config_dir()) / "lab" / "user-settings"


@dataclass
class UserSettings:
    """What the user's file says, already validated.

    `kernel` holds provisioner settings under their snake_case names (the
    user layer of settings.resolve); `policy_values` the automatic page-out
    keys; `problems` one sentence per ignored key or unreadable file.
    """

    path: Path
    found: bool = False
    kernel: dict[str, Any] = field(default_factory=dict)
    policy_values: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "found": self.found,
            "kernel": dict(self.kernel),
            "policy": dict(self.policy_values),
            "problems": list(self.problems),
        }


class InvalidValue(ValueError):
    pass


def _show(value: Any) -> str:
    """A value as the user wrote it in the JSON file (null, true, "64M")."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _size(parse: Callable[[str], int]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidValue(f"{_show(value)} is not a string such as \"64M\"")
        try:
            parse(value)
        except ValueError as error:
            raise InvalidValue(str(error)) from None
        return value.strip()

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(f"{_show(value)} is not true or false")
    return value


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise InvalidValue(f"{_show(value)} is not one of {', '.join(map(_show, choices))}")
        return value

    return check


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidValue(f"{_show(value)} is not a whole number from {low} to {high}")
        return value

    return check


def _swap_dir(value: Any) -> str:
    # Only the form here; the directory itself is checked at each launch,
    # exactly like the admin's (swapdir.prepare_swap_dir).
    if not isinstance(value, str):
        raise InvalidValue(f"{_show(value)} is not a path")
    if value and (not os.path.isabs(value) or "\0" in value):
        raise InvalidValue(f"{_show(value)} is not an absolute path")
    return value


# JSON key -> (snake_case name, check). Empty swapDir means "the server's default".
KERNEL_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "enabled": ("enabled", _boolean),
    "minBigmaacSize": ("min_bigmaac_size", _size(parse_min_bigmaac_size)),
    "minFrySize": ("min_fry_size", _size(lambda text: parse_size(text, allow_zero=True))),
    "swapDir": ("swap_dir", _swap_dir),
    "onDiskFull": ("on_disk_full", _choice(DISK_FULL_CHOICES)),
}
POLICY_KEYS: dict[str, Callable[[Any], Any]] = {
    "autoPageout": _choice(AUTO_PAGEOUT_CHOICES),
    "autoPageoutIdleSeconds": _integer(1, MAX_IDLE_SECONDS),
    "memoryPressurePercent": _integer(0, MAX_PRESSURE_PERCENT),
}


def parse_user_settings(path: Path, text: str) -> UserSettings:
    """Validate the text of a settings file, key by key."""
    result = UserSettings(path, found=True)
    try:
        document = json5.loads(text)
    except ValueError as error:
        result.problems.append(f"user settings {path} ignored: not valid JSON5 ({error})")
        return result
    if not isinstance(document, dict):
        result.problems.append(f"user settings {path} ignored: not a JSON object")
        return result
    for key, (name, check) in KERNEL_KEYS.items():
        if key in document:
            _take(result, result.kernel, name, key, check, document[key])
    if result.kernel.get("swap_dir") == "":
        del result.kernel["swap_dir"]
    _check_fries(result)
    for key, check in POLICY_KEYS.items():
        if key in document:
            _take(result, result.policy_values, key, key, check, document[key])
    return result


def _take(result: UserSettings, into: dict[str, Any], name: str, key: str, check: Any, value: Any) -> None:
    try:
        into[name] = check(value)
    except InvalidValue as error:
        result.problems.append(f"user setting {key} ignored: {error}")


def _check_fries(result: UserSettings) -> None:
    # Against the user's own big threshold only; a fries threshold that ends
    # up not below another layer's is handled when the layers are merged.
    fry, bigmaac = result.kernel.get("min_fry_size"), result.kernel.get("min_bigmaac_size")
    if fry is None or bigmaac is None or parse_size(fry, allow_zero=True) == 0:
        return
    if parse_size(fry) >= parse_size(bigmaac):
        del result.kernel["min_fry_size"]
        result.problems.append(
            f"user setting minFrySize ignored: {_show(fry)} is not below minBigmaacSize {_show(bigmaac)}"
        )


class UserSettingsFile:
    """The user's settings file, re-read only when it changed (stat is cheap)."""

    def __init__(self, settings_dir: Path) -> None:
        self.path = Path(settings_dir) / SETTINGS_FILE
        self._lock = threading.Lock()
        self._signature: tuple[int, ...] | None = None
        self._settings = UserSettings(self.path)

    def read(self) -> UserSettings:
        """The current settings; never raises (an unreadable file is a problem, not an error)."""
        with self._lock:
            signature = self._stat()
            if signature != self._signature:
                self._settings = self._load(signature)
                self._signature = signature
            return self._settings

    def _stat(self) -> tuple[int, ...]:
        try:
            info = os.stat(self.path)
        except OSError:
            return ()
        return (info.st_ino, info.st_size, info.st_mtime_ns)

    def _load(self, signature: tuple[int, ...]) -> UserSettings:
        if not signature:
            return UserSettings(self.path)
        try:
            with open(self.path, "rb") as source:
                data = source.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            return UserSettings(self.path, True, problems=[
                f"user settings {self.path} ignored: {error.strerror}"
            ])
        if len(data) > MAX_FILE_BYTES:
            return UserSettings(self.path, True, problems=[
                f"user settings {self.path} ignored: larger than {MAX_FILE_BYTES} bytes"
            ])
        return parse_user_settings(self.path, data.decode("utf-8", "replace"))
