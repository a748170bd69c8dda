"""requirements.txt on the process backend: a cached environment layered on the runtime's,
built with the real pip from a local wheel (no registry), and a clear error when it fails."""

import asyncio
import subprocess
import sys

import pytest

from scalezero.backends.venvs import COMPLETE, FunctionEnvs, VenvConfig
from scalezero.errors import ConfigError
from wheels import build_wheel


def envs_in(tmp_path, lines):
    return FunctionEnvs(VenvConfig(cache_dir=tmp_path / "cache"), sys.executable,
                        lambda name, text: lines.append(text))


def function(tmp_path, requirements: str):
    fn = tmp_path / "fn"
    build_wheel(fn / "wheels", "sz-local", "1.0", {"sz_local/__init__.py": "VALUE = 42\n"})
    (fn / "requirements.txt").write_text(requirements)
    return fn


def test_requirements_the_runtime_satisfies_need_no_environment(tmp_path):
    fn = function(tmp_path, "flask>=2\n# a comment\n\nwerkzeug\n")
    assert asyncio.run(envs_in(tmp_path, []).python_for("fn", fn)) == sys.executable
    assert not (tmp_path / "cache").exists()


def test_a_missing_package_gets_a_cached_layered_environment(tmp_path):
    fn = function(tmp_path, "--no-index\n--find-links ./wheels\nsz-local==1.0\nflask\n")
    progress = []
    python = asyncio.run(envs_in(tmp_path, progress).python_for("fn", fn))
    assert python != sys.executable and (tmp_path / "cache").resolve() in (tmp_path / python).parents
    assert any("Successfully installed sz-local-1.0" in line for line in progress)
    # Its own package, and the runtime's (scalezero, flask) underneath.
    out = subprocess.run([python, "-c", "import sz_local, flask, scalezero.runtime.serve; "
                          "print(sz_local.VALUE)"], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "42", out.stderr
    # The same requirements again: the cache, no pip.
    again = []
    assert asyncio.run(envs_in(tmp_path, again).python_for("fn", fn)) == python
    assert any("using the cached environment" in line for line in again)
    assert not any(line.startswith("[pip]") for line in again)


def test_a_requirement_that_cannot_be_installed_is_named(tmp_path):
    fn = function(tmp_path, "--no-index\n--find-links ./wheels\nnosuch-package==9.9\n")
    with pytest.raises(ConfigError) as info:
        asyncio.run(envs_in(tmp_path, []).python_for("fn", fn))
    assert "function fn: installing" in str(info.value)
    assert "No matching distribution found for nosuch-package==9.9" in str(info.value)
    # Nothing half-built is left to be mistaken for a cached environment.
    assert not list((tmp_path / "cache").glob(f"*/{COMPLETE}"))
    assert not list((tmp_path / "cache").iterdir())


def test_a_deploy_whose_requirements_fail_is_a_400_and_leaves_nothing(tmp_path):
    from platform_helpers import start_gateway
    fn = tmp_path / "functions" / "bad-reqs"  # where an API deploy finds the function
    fn.mkdir(parents=True)
    (fn / "handler.py").write_text("def handle(event, context):\n    return 'x'\n")
    (fn / "requirements.txt").write_text("--no-index\nnosuch-package==9.9\n")
    p = start_gateway(tmp_path, {})
    try:
        status, _, body = p.request("POST", "/system/functions", {"service": "bad-reqs", "image": "x"})
        assert status == 400 and b"No matching distribution found for nosuch-package==9.9" in body
        assert p.request("GET", "/system/function/bad-reqs")[0] == 404
    finally:
        p.stop()
