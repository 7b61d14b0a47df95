"""Where the files this package ships live, and where the Node executable is.

Everything else asks this module, so a relocated bundle is one change.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_DIR = PACKAGE_DIR / "_bundled"
LABEXTENSION_DIR = PACKAGE_DIR / "labextension"

BUNDLED_LIBRARY = BUNDLED_DIR / "libbigmaac.so"
BUNDLED_ADDON = BUNDLED_DIR / "bigmaac.node"
BUNDLED_AGENT = BUNDLED_DIR / "bigmaac.js"


def library_path(env: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """The preload library: $BIGMAAC_LIBRARY, else the bundled one."""
    env = os.environ if env is None else env
    configured = env.get("BIGMAAC_LIBRARY", "")
    return Path(configured) if configured else BUNDLED_LIBRARY


def addon_path(env: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """The Node addon: $BIGMAAC_ADDON, else the bundled one."""
    env = os.environ if env is None else env
    configured = env.get("BIGMAAC_ADDON", "")
    return Path(configured) if configured else BUNDLED_ADDON


def find_node(env: os._Environ[str] | dict[str, str] | None = None) -> str | None:
    """The node executable: $BIGMAAC_NODE, else `node` on PATH; None when absent."""
    env = os.environ if env is None else env
    configured = env.get("BIGMAAC_NODE", "")
    if configured:
        return shutil.which(configured) or None
    return shutil.which("node", path=env.get("PATH"))


def agent_environment(env: os._Environ[str] | dict[str, str] | None = None) -> dict[str, str]:
    """A copy of `env` in which the agent finds the bundled library and addon
    unless the caller already chose others."""
    result = dict(os.environ if env is None else env)
    if not result.get("BIGMAAC_LIBRARY"):
        result["BIGMAAC_LIBRARY"] = str(BUNDLED_LIBRARY)
    if not result.get("BIGMAAC_ADDON"):
        result["BIGMAAC_ADDON"] = str(BUNDLED_ADDON)
    return result
