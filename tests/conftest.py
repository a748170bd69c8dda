"""Shared fixtures. Process helpers live in tests/procs.py."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import REPO, start_instance, stop_process, wait_ready  # noqa: E402

FIXTURE_FUNCTIONS = Path(__file__).resolve().parent / "fixtures" / "functions"


@pytest.fixture
def instance():
    """Factory: ``instance(function_dir, env=None, ready=True) -> (proc, url)``; all stopped after."""
    started = []

    def start(function_dir, env=None, ready=True):
        proc, url = start_instance(function_dir, env)
        started.append(proc)
        if ready:
            wait_ready(url)
        return proc, url

    yield start
    for proc in started:
        stop_process(proc)
