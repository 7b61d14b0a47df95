"""JupyterLab server configuration for the BigMaac browser tests.

Galata's test settings (no token, temporary root directory) plus BigMaac:
a swap directory on a real disk, since BigMaac refuses RAM-backed ones, and a
private stats-segment directory so other BigMaac processes on the machine do
not show up. Both are removed when the server exits.
"""

import atexit
import os
import shutil
import tempfile

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821
c.ServerApp.allow_root = True  # noqa: F821
# Galata makes temporary root and workspace directories on every load of this file.
for _galata_dir in (c.ServerApp.root_dir, c.LabApp.workspaces_dir):  # noqa: F821
    if os.path.basename(_galata_dir).startswith("galata-"):
        atexit.register(shutil.rmtree, _galata_dir, ignore_errors=True)


def _fs_type(path):
    """The type of the file system holding `path`, from the longest matching mount."""
    path = os.path.realpath(path)
    best, kind = "", ""
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                mount = fields[1]
                inside = path == mount or path.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) > len(best):
                    best, kind = mount, fields[2]
    except OSError:
        pass
    return kind


def _disk_tmpdir():
    """/var/tmp unless it is RAM-backed; then this directory, on the repository's disk."""
    for candidate in ("/var/tmp", os.path.dirname(os.path.abspath(__file__))):
        if os.path.isdir(candidate) and _fs_type(candidate) not in ("tmpfs", "ramfs"):
            return candidate
    return None


def _test_dirs():
    """Create the directories once: jupyter lab loads this file several times."""
    if "BIGMAAC_UI_TEST_SWAP_DIR" not in os.environ:
        swap_dir = tempfile.mkdtemp(prefix="bigmaac-ui-swap-", dir=_disk_tmpdir())
        segment_dir = tempfile.mkdtemp(prefix="bigmaac-ui-segments-")
        atexit.register(shutil.rmtree, swap_dir, ignore_errors=True)
        atexit.register(shutil.rmtree, segment_dir, ignore_errors=True)
        os.environ["BIGMAAC_UI_TEST_SWAP_DIR"] = swap_dir
        # Kernels and the agent inherit the server's environment.
        os.environ["BIGMAAC_SEGMENT_DIR"] = segment_dir
    return os.environ["BIGMAAC_UI_TEST_SWAP_DIR"]


def _settings_dir():
    """A private user-settings directory: tests must not touch the user's own settings."""
    if "BIGMAAC_UI_TEST_SETTINGS_DIR" not in os.environ:
        settings_dir = tempfile.mkdtemp(prefix="bigmaac-ui-settings-")
        atexit.register(shutil.rmtree, settings_dir, ignore_errors=True)
        os.environ["BIGMAAC_UI_TEST_SETTINGS_DIR"] = settings_dir
        os.environ["JUPYTERLAB_SETTINGS_DIR"] = settings_dir
    return os.environ["BIGMAAC_UI_TEST_SETTINGS_DIR"]


c.LabApp.user_settings_dir = _settings_dir()  # noqa: F821
c.BigMaac.enabled = True  # noqa: F821
c.BigMaac.swap_dir = _test_dirs()  # noqa: F821
# Locked as an administrator would: the settings spec checks the user is told.
c.BigMaac.locked = ["swap_dir"]  # noqa: F821
c.BigMaac.min_bigmaac_size = "32M"  # noqa: F821
