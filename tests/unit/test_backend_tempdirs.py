"""The pre-fork templates' folders: stale ones of dead gateways go, live ones stay."""

import asyncio
import os
import subprocess
import sys
import time

import pytest

from scalezero.backends import tempdirs
from scalezero.backends.template import PreforkError, Template, TemplateConfig


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    return proc.pid


def test_folders_of_dead_pids_and_old_unused_legacy_ones_are_removed(tmp_path):
    dead = tmp_path / f"scalezero-prefork-{dead_pid()}-x1"
    live = tmp_path / f"scalezero-prefork-{os.getpid()}-x2"
    old_legacy, new_legacy = tmp_path / "scalezero-prefork-ab12", tmp_path / "scalezero-prefork-cd34"
    other = tmp_path / "someone-else"
    for d in (dead, live, old_legacy, new_legacy, other):
        d.mkdir()
        (d / "template.sock").write_text("")  # not a listening socket
    past = time.time() - 3600
    os.utime(old_legacy, (past, past))
    removed = tempdirs.remove_stale(str(tmp_path))
    assert sorted(removed) == sorted([str(dead), str(old_legacy)])
    assert live.exists() and new_legacy.exists() and other.exists()


def test_a_folder_is_named_for_this_process(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    path = tempdirs.make()
    assert os.path.basename(path).startswith(f"scalezero-prefork-{os.getpid()}-")
    assert oct(os.stat(path).st_mode & 0o777) == "0o700"


@pytest.mark.parametrize("python, env", [
    ("/nonexistent/python3", {}),  # no such interpreter
    (sys.executable, {"A=B": "1"}),  # an environment exec refuses
], ids=["no-interpreter", "bad-env"])
def test_a_template_that_cannot_start_leaves_no_folder(tmp_path, monkeypatch, python, env):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    async def start():
        t = Template(str(tmp_path), python, env, TemplateConfig(), lambda line: None)
        with pytest.raises(PreforkError, match="cannot start the template"):
            await t.start()
    asyncio.run(start())
    assert list(tmp_path.glob("scalezero-prefork-*")) == []
