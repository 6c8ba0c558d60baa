"""Scratch cleanup between runs, and a Python installed under a directory the sandbox hides."""

from __future__ import annotations

import os
import sys

from tool_env.local import isolation
from tool_env.local.scratch import has_entries as _has_entries, wipe as _wipe


def test_wipe_empties_scratch_but_keeps_bound_paths_and_their_parents(tmp_path) -> None:
    keep = tmp_path / "checkout" / "venv"
    keep.mkdir(parents=True)
    (keep / "python").write_text("interpreter")
    (tmp_path / "checkout" / "dropped_by_run.txt").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "f").write_text("x")

    assert _has_entries(str(tmp_path), skip=(str(keep),))
    _wipe(str(tmp_path), (str(keep),))

    assert os.listdir(tmp_path) == ["checkout"]
    assert os.listdir(tmp_path / "checkout") == ["venv"]
    assert (keep / "python").read_text() == "interpreter"
    assert not _has_entries(str(tmp_path), skip=(str(keep),))


def test_interpreter_under_tmp_is_bound_back_once(monkeypatch) -> None:
    monkeypatch.setattr(sys, "prefix", "/tmp/ci/checkout/.venv")
    monkeypatch.setattr(sys, "exec_prefix", "/tmp/ci/checkout/.venv")
    monkeypatch.setattr(sys, "base_prefix", "/opt/python")
    monkeypatch.setattr(isolation, "PACKAGE_ROOT", "/tmp/ci/checkout")
    monkeypatch.setattr(sys, "executable", "/tmp/ci/checkout/.venv/bin/python")
    kept = isolation.interpreter_paths_to_keep()
    assert kept == ["/tmp/ci/checkout/.venv"]  # nested paths collapse; the checkout itself is not bound
    argv = isolation._bwrap_argv(disk_mb=8)
    bind = argv.index("/tmp/ci/checkout/.venv") - 1
    assert argv[bind] == "--ro-bind" and argv.index("--tmpfs") < bind  # bound after /tmp is replaced
    assert "/tmp/ci/checkout" not in argv  # only its package, at the sandbox's own path
    package = argv.index("/tmp/ci/checkout/tool_env")
    assert argv[package - 1] == "--ro-bind" and argv[package + 1] == "/sandbox/tool_env"


def test_nothing_is_bound_back_when_python_lives_elsewhere(monkeypatch) -> None:
    for name in ("prefix", "base_prefix", "exec_prefix"):
        monkeypatch.setattr(sys, name, "/opt/python")
    monkeypatch.setattr(sys, "executable", "/opt/python/bin/python")
    monkeypatch.setattr(isolation, "PACKAGE_ROOT", "/srv/checkout")
    assert isolation.interpreter_paths_to_keep() == []
