"""Loading handlers from function folders, and preloading for a fork template."""

import os
import sys
from pathlib import Path

import pytest

from scalezero.errors import ConfigError
from scalezero.runtime.loader import HandlerSlot, load_handler, load_into, preload, preload_modules

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "functions"


def test_load_handle_style_with_warmup():
    h = load_handler(FIXTURES / "slow", package="fixture_slow")
    assert h.kind == "handle" and h.warmup is not None and h.source.endswith("slow/handler.py")


def test_load_lambda_style():
    assert load_handler(FIXTURES / "lambda-echo", package="fixture_lambda").kind == "lambda"


def test_missing_handler_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="needs a handler.py"):
        load_handler(tmp_path)


def test_broken_import_fails_the_slot_with_the_reason():
    slot = HandlerSlot()
    assert not load_into(slot, FIXTURES / "broken", "fixture_broken")
    assert not slot.ready and "broken on purpose" in slot.status_text()


def test_load_into_runs_warmup_before_ready(tmp_path):
    (tmp_path / "handler.py").write_text(
        "CALLS = []\ndef warmup():\n    CALLS.append('warm')\ndef handle(e, c):\n    return CALLS\n")
    slot = HandlerSlot()
    assert load_into(slot, tmp_path, "fixture_tmp")
    assert slot.get().func(None, None) == ["warm"]


def test_preload_imports_listed_modules_only():
    sys.modules.pop("xml.dom.minidom", None)
    assert preload_modules(FIXTURES / "slow") == ["json", "xml.dom.minidom"]
    assert preload(FIXTURES / "slow") == ["json", "xml.dom.minidom"]
    assert "xml.dom.minidom" in sys.modules


def test_preload_without_a_list_does_nothing(tmp_path):
    assert preload(tmp_path) == []


def test_preload_of_a_missing_module_says_which(tmp_path):
    (tmp_path / "preload.txt").write_text("no_such_module_here  # typo\n")
    with pytest.raises(ConfigError, match="'no_such_module_here'"):
        preload(tmp_path)


def test_the_folder_is_a_package_so_relative_imports_work(tmp_path):
    # As the templates' `from function import handler`: handler.py is function.handler.
    (tmp_path / "helper.py").write_text("def shout(s):\n    return s.upper()\n")
    (tmp_path / "handler.py").write_text(
        "from .helper import shout\nimport helper\n"
        "def handle(event, context):\n    return shout('hi') + helper.shout('!')\n")
    h = load_handler(tmp_path, package="fixture_relative")
    assert h.func(None, None) == "HI!"
    assert sys.modules["fixture_relative.handler"].__package__ == "fixture_relative"


def test_a_failed_import_leaves_no_half_package(tmp_path):
    (tmp_path / "handler.py").write_text("from .missing import x\n")
    with pytest.raises(ImportError):
        load_handler(tmp_path, package="fixture_half")
    assert not [n for n in sys.modules if n.startswith("fixture_half")]


def test_handle_req_is_the_classic_template(tmp_path):
    (tmp_path / "handler.py").write_text("def handle(req):\n    return req\n")
    assert load_handler(tmp_path, package="fixture_classic").kind == "classic"


def test_an_edit_of_the_same_size_in_the_same_second_runs_the_new_code(tmp_path, monkeypatch):
    # A .pyc matches its source by size and whole-second mtime: 'v1' -> 'v2' within a
    # second (then a redeploy) ran the old code. Here the mtime is set back to be sure.
    def write(version):
        (tmp_path / "helper.py").write_text(f"V = '{version}'\n")
        (tmp_path / "handler.py").write_text(
            f"from .helper import V\nimport helper\n"
            f"def handle(event, context):\n    return '{version}' + V + helper.V\n")
        for name in ("helper.py", "handler.py"):
            os.utime(tmp_path / name, ns=(10**18, 10**18))

    def forget():  # as a new instance process, which has none of them imported
        for name in [n for n in sys.modules if n.startswith("fixture_edit") or n == "helper"]:
            del sys.modules[name]

    def load_fresh():
        forget()
        return load_handler(tmp_path, package="fixture_edit").func(None, None)

    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as in an instance
    try:
        write("v1")
        assert load_fresh() == "v1v1v1"
        write("v2")
        assert load_fresh() == "v2v2v2"
        assert not (tmp_path / "__pycache__").exists()
    finally:
        forget()  # another test's folder has a helper.py too
