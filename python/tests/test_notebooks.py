"""Each notebook's own toggle: the server-side registry and the saved metadata.

A change reaches a kernel at its next restart; an admin-locked value wins.
"""

from __future__ import annotations

import json
import re
import stat
import time

import pytest

from conftest import require_artifacts
from jupyterlab_bigmaac import paths

ENV_NAMES = ("LD_PRELOAD", "BIGMAAC_MIN_BIGMAAC_SIZE", "BIGMAAC_KERNEL_ID")


@pytest.fixture(scope="module")
def server(make_server):
    require_artifacts()
    return make_server()


def put_toggle(server, path, body):
    return server.request("PUT", "bigmaac/notebooks", params={"path": path}, json=body)


def preloaded(env) -> bool:
    return str(paths.BUNDLED_LIBRARY) in (env["LD_PRELOAD"] or "").split(":")


def write_notebook(server, path, bigmaac_metadata):
    notebook = {
        "cells": [],
        "metadata": {"bigmaac": bigmaac_metadata},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    target = server.home / "root" / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(notebook))


@pytest.mark.parametrize(
    "body, words",
    [
        ({"enabled": "yes"}, "enabled"),
        ({"min_bigmaac_size": "lots"}, "min_bigmaac_size"),
        ({"min_bigmaac_size": 64}, "min_bigmaac_size"),
        ({"min_bigmaac_size": "0"}, "greater than zero"),
        ({"min_bigmaac_size": "1K"}, "min_bigmaac_size: '1K' is below the minimum of 4096 bytes (4K)"),
        ({"swap_dir": "/tmp"}, "unknown setting(s) 'swap_dir'"),
        ({"LD_PRELOAD": "/evil.so", "enabled": True}, "unknown setting(s) 'LD_PRELOAD'"),
        (["enabled"], "JSON object"),
    ],
)
def test_invalid_toggles_are_refused_with_a_reason(server, body, words):
    response = put_toggle(server, "bad.ipynb", body)
    assert response.status_code == 400, response.text
    assert words in response.json()["message"]
    assert server.json("bigmaac/notebooks?path=bad.ipynb")["toggle"] == {}


def test_unparsable_body_is_refused(server):
    response = server.request("PUT", "bigmaac/notebooks", params={"path": "x.ipynb"}, data="{nope")
    assert response.status_code == 400
    assert "not JSON" in response.json()["message"]


@pytest.mark.parametrize("path", ["../outside.ipynb", "a/../../b.ipynb", "", "/", "a\\b.ipynb"])
def test_unsafe_paths_are_refused(server, path):
    response = put_toggle(server, path, {"enabled": False})
    assert response.status_code == 400, response.text
    assert "path" in response.json()["message"]


def test_paths_are_normalised_and_toggles_listed(server):
    response = put_toggle(server, "/./work//Deep.ipynb", {"enabled": False, "min_bigmaac_size": " 64M "})
    assert response.status_code == 200, response.text
    assert response.json() == {"path": "work/Deep.ipynb", "toggle": {"enabled": False, "min_bigmaac_size": "64M"}}
    assert server.json("bigmaac/notebooks?path=work/Deep.ipynb")["toggle"]["enabled"] is False
    listed = server.json("bigmaac/notebooks")["notebooks"]
    assert {"path": "work/Deep.ipynb", "toggle": {"enabled": False, "min_bigmaac_size": "64M"}} in listed
    deleted = server.request("DELETE", "bigmaac/notebooks", params={"path": "work/Deep.ipynb"})
    assert deleted.status_code == 204
    assert server.json("bigmaac/notebooks?path=work/Deep.ipynb")["toggle"] == {}


def test_writes_need_credentials_and_xsrf(server):
    for token in (None, "wrong"):
        response = put_toggle_with(server, token, {"enabled": False})
        assert response.status_code in (401, 403)
        assert server.get("bigmaac/notebooks", token=token).status_code in (401, 403)
    # A browser session: logged in by cookie, so writes need the XSRF token.
    browser = server.browser_login()
    xsrf = browser.cookies.get("_xsrf")
    assert browser.get(server.url + "bigmaac/notebooks", timeout=30).status_code == 200
    url = server.url + "bigmaac/notebooks"
    refused = browser.put(url, params={"path": "cookie.ipynb"}, json={"enabled": False}, timeout=30)
    assert refused.status_code == 403
    assert server.json("bigmaac/notebooks?path=cookie.ipynb")["toggle"] == {}
    accepted = browser.put(
        url, params={"path": "cookie.ipynb"}, json={"enabled": False},
        headers={"X-XSRFToken": xsrf}, timeout=30,
    )
    assert accepted.status_code == 200, accepted.text
    assert server.json("bigmaac/notebooks?path=cookie.ipynb")["toggle"] == {"enabled": False}


def put_toggle_with(server, token, body):
    return server.request("PUT", "bigmaac/notebooks", token=token, params={"path": "t.ipynb"}, json=body)


def test_unsaved_notebook_toggle_takes_effect_on_restart_both_ways(server):
    # As JupyterLab opens it: path with its directory, name the base name.
    # The file itself does not exist (never saved); its directory does.
    (server.home / "root" / "drafts").mkdir()
    kernel = server.start_notebook("drafts/Unsaved.ipynb", name="Unsaved.ipynb")
    assert preloaded(kernel.environment(*ENV_NAMES))
    assert server.kernel_state(kernel.id)["notebookPath"] == "drafts/Unsaved.ipynb"

    assert put_toggle(server, "drafts/Unsaved.ipynb", {"enabled": False}).status_code == 200
    # The running kernel is not changed behind its back...
    assert preloaded(kernel.environment(*ENV_NAMES))
    assert server.kernel_state(kernel.id)["enabled"] is True
    # ...the restart applies the toggle.
    kernel.restart()
    env = kernel.environment(*ENV_NAMES)
    assert not preloaded(env) and env["BIGMAAC_KERNEL_ID"] is None
    state = server.kernel_state(kernel.id)
    assert state["enabled"] is False and state["reasonCode"] == "disabled"
    assert state["sources"]["enabled"] == "notebook toggle"

    # And back on, with a new threshold.
    body = {"enabled": True, "min_bigmaac_size": "48M"}
    assert put_toggle(server, "drafts/Unsaved.ipynb", body).status_code == 200
    kernel.restart()
    env = kernel.environment(*ENV_NAMES)
    assert preloaded(env) and env["BIGMAAC_MIN_BIGMAAC_SIZE"] == "48M"
    state = server.kernel_state(kernel.id)
    assert state["enabled"] is True and state["settings"]["min_bigmaac_size"] == "48M"
    assert state["sources"]["enabled"] == state["sources"]["min_bigmaac_size"] == "notebook toggle"
    assert state["sources"]["swap_dir"] == "admin"
    assert state["launches"] == 3
    kernel.shutdown()


def test_saved_metadata_applies_and_the_toggle_overrides_it(server):
    write_notebook(server, "saved/Meta.ipynb", {"min_bigmaac_size": "40M", "colour": "ignored"})
    kernel = server.start_notebook("saved/Meta.ipynb", name="Meta.ipynb")
    env = kernel.environment(*ENV_NAMES)
    assert preloaded(env) and env["BIGMAAC_MIN_BIGMAAC_SIZE"] == "40M"
    assert server.kernel_state(kernel.id)["sources"]["min_bigmaac_size"] == "notebook metadata"

    # The saved file changes: off. The next restart follows it.
    write_notebook(server, "saved/Meta.ipynb", {"enabled": False, "min_bigmaac_size": "40M"})
    kernel.restart()
    assert not preloaded(kernel.environment(*ENV_NAMES))
    assert server.kernel_state(kernel.id)["sources"]["enabled"] == "notebook metadata"

    # The registry (newer, unsaved intent) wins over the metadata.
    assert put_toggle(server, "saved/Meta.ipynb", {"enabled": True}).status_code == 200
    kernel.restart()
    env = kernel.environment(*ENV_NAMES)
    assert preloaded(env) and env["BIGMAAC_MIN_BIGMAAC_SIZE"] == "40M"
    sources = server.kernel_state(kernel.id)["sources"]
    assert (sources["enabled"], sources["min_bigmaac_size"]) == ("notebook toggle", "notebook metadata")
    kernel.shutdown()


def test_invalid_metadata_starts_the_kernel_without_bigmaac(server):
    write_notebook(server, "BadMeta.ipynb", {"min_bigmaac_size": "huge"})
    kernel = server.start_notebook("BadMeta.ipynb")
    assert not preloaded(kernel.environment(*ENV_NAMES))
    assert kernel.execute("print(6 * 7)").strip() == "42"
    state = server.kernel_state(kernel.id)
    assert state["reasonCode"] == "invalid-setting" and "huge" in state["reason"]
    kernel.shutdown()


def test_a_shared_notebook_cannot_go_below_the_disk_backed_floor(server):
    # Saved metadata reaches the kernel without the registry's check: the same floor applies.
    write_notebook(server, "Tiny.ipynb", {"min_bigmaac_size": "64"})
    kernel = server.start_notebook("Tiny.ipynb")
    assert not preloaded(kernel.environment(*ENV_NAMES))
    state = server.kernel_state(kernel.id)
    assert state["reasonCode"] == "invalid-setting"
    assert state["reason"] == "min_bigmaac_size: '64' is below the minimum of 4096 bytes (4K)"
    assert state["sources"]["min_bigmaac_size"] == "notebook metadata"
    kernel.shutdown()


def test_admin_locked_values_win_over_the_notebook(make_server):
    server = make_server({"locked": ["enabled", "min_bigmaac_size"], "min_bigmaac_size": "36M"})
    write_notebook(server, "Locked.ipynb", {"enabled": False, "min_bigmaac_size": "40M"})
    assert put_toggle(server, "Locked.ipynb", {"enabled": False, "min_bigmaac_size": "48M"}).status_code == 200
    kernel = server.start_notebook("Locked.ipynb")
    env = kernel.environment(*ENV_NAMES)
    assert preloaded(env) and env["BIGMAAC_MIN_BIGMAAC_SIZE"] == "36M"
    state = server.kernel_state(kernel.id)
    assert state["enabled"] is True
    assert state["sources"]["enabled"] == state["sources"]["min_bigmaac_size"] == "admin (locked)"
    # Still locked after a restart.
    kernel.restart()
    assert preloaded(kernel.environment(*ENV_NAMES))
    kernel.shutdown()


def test_toggle_is_kept_per_path(server):
    assert put_toggle(server, "one.ipynb", {"enabled": False}).status_code == 200
    other = server.start_notebook("two.ipynb")
    assert preloaded(other.environment(*ENV_NAMES))
    assert re.fullmatch(r"two\.ipynb", server.kernel_state(other.id)["notebookPath"])
    other.shutdown()


def test_a_renamed_notebook_uses_its_new_path_at_restart(server):
    assert put_toggle(server, "Renamed.ipynb", {"min_bigmaac_size": "44M"}).status_code == 200
    kernel = server.start_notebook("Before.ipynb")
    assert kernel.environment(*ENV_NAMES)["BIGMAAC_MIN_BIGMAAC_SIZE"] == "32M"
    # What JupyterLab does when the user renames the notebook.
    response = server.request(
        "PATCH", f"api/sessions/{kernel.session_id}", json={"path": "Renamed.ipynb", "name": "Renamed.ipynb"}
    )
    assert response.status_code == 200, response.text
    kernel.restart()
    assert kernel.environment(*ENV_NAMES)["BIGMAAC_MIN_BIGMAAC_SIZE"] == "44M"
    assert server.kernel_state(kernel.id)["notebookPath"] == "Renamed.ipynb"
    kernel.shutdown()


def saved_registry(server):
    return server.home / "data" / "bigmaac" / "notebook-toggles.json"


def test_toggles_survive_a_server_restart(make_server):
    server = make_server()
    (server.home / "root" / "drafts").mkdir()
    assert put_toggle(server, "drafts/Off.ipynb", {"enabled": False}).status_code == 200
    assert put_toggle(server, "drafts/Big.ipynb", {"min_bigmaac_size": "44M"}).status_code == 200
    assert put_toggle(server, "drafts/Gone.ipynb", {"enabled": False}).status_code == 200
    assert server.request("DELETE", "bigmaac/notebooks", params={"path": "drafts/Gone.ipynb"}).status_code == 204
    saved = saved_registry(server)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert not [p for p in saved.parent.iterdir() if p != saved], "a temporary file was left behind"

    server.restart()
    listed = server.json("bigmaac/notebooks")["notebooks"]
    assert listed == [
        {"path": "drafts/Big.ipynb", "toggle": {"min_bigmaac_size": "44M"}},
        {"path": "drafts/Off.ipynb", "toggle": {"enabled": False}},
    ]
    off = server.start_notebook("drafts/Off.ipynb", name="Off.ipynb")
    assert not preloaded(off.environment(*ENV_NAMES))
    assert server.kernel_state(off.id)["sources"]["enabled"] == "notebook toggle"
    big = server.start_notebook("drafts/Big.ipynb", name="Big.ipynb")
    env = big.environment(*ENV_NAMES)
    assert preloaded(env) and env["BIGMAAC_MIN_BIGMAAC_SIZE"] == "44M"
    off.shutdown()
    big.shutdown()


@pytest.mark.parametrize(
    "content",
    [
        b"{ not json",
        b'{"version": 99, "notebooks": {}}',
        b'{"version": 1, "notebooks": {"../escape.ipynb": {"enabled": false}}}',
        b'{"version": 1, "notebooks": {"a.ipynb": {"LD_PRELOAD": "/evil.so"}}}',
    ],
)
def test_a_bad_saved_registry_is_ignored_with_a_warning(make_server, content):
    server = make_server()
    server.stop()
    saved = saved_registry(server)
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_bytes(content)
    server.start()
    assert server.json("bigmaac/notebooks")["notebooks"] == []
    assert "ignores the saved notebook toggles" in server.log()
    # The next change replaces it with a valid registry.
    assert put_toggle(server, "fresh.ipynb", {"enabled": False}).status_code == 200
    assert json.loads(saved.read_text())["notebooks"] == {"fresh.ipynb": {"enabled": False}}


def wait_for_toggle(server, path, expected, what):
    deadline = time.monotonic() + 60
    while (toggle := server.json(f"bigmaac/notebooks?path={path}")["toggle"]) != expected:
        assert time.monotonic() < deadline, f"the toggle of {path} never {what}: {toggle}"
        time.sleep(0.05)


def test_toggles_follow_renames_and_go_with_deletes(server):
    """Through the contents API: a new notebook at an old path does not inherit the old toggle."""
    write_notebook(server, "moves/Old.ipynb", {})
    assert put_toggle(server, "moves/Old.ipynb", {"enabled": False}).status_code == 200
    renamed = server.request("PATCH", "api/contents/moves/Old.ipynb", json={"path": "moves/New.ipynb"})
    assert renamed.status_code == 200, renamed.text
    wait_for_toggle(server, "moves/New.ipynb", {"enabled": False}, "moved with the rename")
    assert server.json("bigmaac/notebooks?path=moves/Old.ipynb")["toggle"] == {}

    # A new notebook where the old one was starts with BigMaac, as configured.
    write_notebook(server, "moves/Old.ipynb", {})
    kernel = server.start_notebook("moves/Old.ipynb", name="Old.ipynb")
    assert preloaded(kernel.environment(*ENV_NAMES))
    kernel.shutdown()

    # A directory's rename moves the toggles inside it; a delete forgets them.
    assert put_toggle(server, "moves/deep/A.ipynb", {"min_bigmaac_size": "8M"}).status_code == 200
    write_notebook(server, "moves/deep/A.ipynb", {})
    renamed = server.request("PATCH", "api/contents/moves", json={"path": "moved"})
    assert renamed.status_code == 200, renamed.text
    wait_for_toggle(server, "moved/deep/A.ipynb", {"min_bigmaac_size": "8M"}, "moved with its directory")
    wait_for_toggle(server, "moved/New.ipynb", {"enabled": False}, "moved with its directory")
    deleted = server.request("DELETE", "api/contents/moved/New.ipynb")
    assert deleted.status_code == 204, deleted.text
    wait_for_toggle(server, "moved/New.ipynb", {}, "went with the delete")
    assert server.json("bigmaac/notebooks?path=moved/deep/A.ipynb")["toggle"] == {"min_bigmaac_size": "8M"}
    paths = [entry["path"] for entry in server.json("bigmaac/notebooks")["notebooks"]]
    assert not [p for p in paths if p.startswith("moves/")]
