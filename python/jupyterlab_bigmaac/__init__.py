"""Disk-backed memory for Jupyter kernels."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import BigMaacExtension  # imported late: the provisioner alone needs no server

    return [{"module": "jupyterlab_bigmaac", "app": BigMaacExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyterlab-bigmaac"}]
