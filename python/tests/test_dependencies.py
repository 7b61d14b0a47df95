"""The oldest releases pyproject.toml allows have every name the package imports.

The floor of each Jupyter dependency is downloaded from the package index
(the wheel only, no dependencies) and each `from <dependency>.<module> import
<name>` in jupyterlab_bigmaac is looked up in that release's source.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE_DIR = REPO / "python" / "jupyterlab_bigmaac"
CHECKED = ("jupyter_server", "jupyter_client")


def declared_floor(distribution: str) -> str:
    text = (REPO / "pyproject.toml").read_text()
    dependencies = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    match = re.search(rf'"{distribution}\s*>=\s*([0-9][0-9.]*)', dependencies)
    assert match, f"pyproject.toml declares no floor for {distribution}"
    return match.group(1)


def imported_names(distribution: str) -> dict[str, set[str]]:
    """module -> names, for every `from <distribution>.x import a, b` in the package."""
    wanted: dict[str, set[str]] = {}
    for source in PACKAGE_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] == distribution:
                    wanted.setdefault(node.module, set()).update(alias.name for alias in node.names)
    return wanted


def defined_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def module_source(wheel: zipfile.ZipFile, module: str) -> str | None:
    stem = module.replace(".", "/")
    for candidate in (f"{stem}.py", f"{stem}/__init__.py"):
        if candidate in wheel.namelist():
            return wheel.read(candidate).decode("utf-8")
    return None


@pytest.mark.parametrize("distribution", CHECKED)
def test_the_declared_floor_has_every_imported_name(distribution, tmp_path):
    floor = declared_floor(distribution)
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--dest", str(tmp_path), f"{distribution}=={floor}"],
        capture_output=True, text=True, timeout=300,
    )
    assert download.returncode == 0, f"cannot download {distribution}=={floor}:\n{download.stderr}"
    [wheel_path] = tmp_path.glob("*.whl")
    missing = []
    with zipfile.ZipFile(wheel_path) as wheel:
        for module, names in sorted(imported_names(distribution).items()):
            source = module_source(wheel, module)
            if source is None:
                missing.append(f"module {module}")
                continue
            missing += [f"{module}.{name}" for name in sorted(names - defined_names(ast.parse(source)))]
    assert not missing, f"{distribution}=={floor} (the floor in pyproject.toml) lacks: {', '.join(missing)}"
