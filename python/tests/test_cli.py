"""The `bigmaac` console script runs the bundled Node CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import require_artifacts
from jupyterlab_bigmaac import __version__, paths

BIGMAAC = Path(sys.executable).parent / "bigmaac"


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BIGMAAC_")}
    environment.update(env)
    return subprocess.run(
        [str(BIGMAAC), *args], env=environment, capture_output=True, text=True, timeout=60
    )


def test_version():
    require_artifacts()
    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert __version__ in result.stdout


def test_ps_json_lists_a_process_under_the_library(disk_tmp):
    require_artifacts()
    segments, swap = disk_tmp / "cli-segments", disk_tmp / "cli-swap"
    env = {"BIGMAAC_SEGMENT_DIR": str(segments), "BIGMAAC_DIR": str(swap)}
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import numpy as np, sys; a = np.ones(48 * 2**20 // 8); print('ready', flush=True); sys.stdin.read()"],
        env={**os.environ, **env, "LD_PRELOAD": str(paths.BUNDLED_LIBRARY)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = run("ps", "--json", **env)
        assert result.returncode == 0, result.stderr
        processes = json.loads(result.stdout)["processes"]
        mine = [p for p in processes if p["pid"] == holder.pid]
        assert mine, f"pid {holder.pid} not in {processes}"
        assert mine[0]["diskBacked"]["bytes"] >= 48 * 2**20
    finally:
        holder.communicate("", timeout=30)


def test_missing_node_is_one_clear_line_and_127():
    result = run("--version", BIGMAAC_NODE="/nonexistent/node")
    assert result.returncode == 127
    assert result.stderr.count("\n") == 1
    assert "/nonexistent/node" in result.stderr and "BIGMAAC_NODE" in result.stderr
