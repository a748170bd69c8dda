"""Shared fixtures. Process helpers live in tests/procs.py."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from PIL import Image  # noqa: E402

from procs import start_instance, stop_process, wait_ready  # noqa: E402

# Importing Ultralytics replaces PIL.Image.open process-wide (a HEIF fallback that tries to
# install pi-heif on any unidentified image). yolo-detect never runs beside Ultralytics, so
# tests that import it must not leak that into the next test's decoding.
_PIL_OPEN = Image.open


@pytest.fixture(autouse=True)
def _pillow_as_shipped():
    yield
    Image.open = _PIL_OPEN

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
