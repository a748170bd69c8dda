"""The function Dockerfiles are renderings of one template (scripts/dockerfiles.py)."""

import subprocess
import sys

import pytest

from modules import load_module
from procs import REPO

dockerfiles = load_module(REPO / "scripts" / "dockerfiles.py", "dockerfiles")


def test_every_function_dockerfile_is_the_template_rendered():
    proc = subprocess.run([sys.executable, "scripts/dockerfiles.py", "--check"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_the_table_covers_every_function_with_a_dockerfile():
    rendered = {p.parent.name for p in dockerfiles.rendered()}
    assert rendered == {p.parent.name for p in (REPO / "functions").glob("*/Dockerfile")}


def test_a_function_differs_only_where_its_row_says(tmp_path):
    template = dockerfiles.TEMPLATE.read_text()
    plain = dockerfiles.render("f", {"summary": "s"}, template)
    assert "COPY functions/f /home/app/functions/f\nRUN python3 -m compileall" in plain
    assert "models/" not in plain.split("FROM", 1)[1] and "--start-period=20s" in plain
    heavy = dockerfiles.render("f", {"summary": "s", "models": ["m.onnx"], "env": "A=1"},
                               template)
    assert "COPY models/m.onnx /home/app/models/" in heavy
    assert "PYTHONPATH=/opt/scalezero \\\n    A=1\n" in heavy


def test_an_unknown_key_is_refused():
    with pytest.raises(SystemExit, match="unknown keys \\['modle'\\]"):
        dockerfiles.render("f", {"summary": "s", "modle": []}, dockerfiles.TEMPLATE.read_text())
