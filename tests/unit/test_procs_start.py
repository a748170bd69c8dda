"""procs.start_listening: the one way the demo, the benchmarks and the tests wait for a
process's LISTENING line, and never leave it running when that fails."""

import sys

import psutil
import pytest

from scalezero.procs import start_listening, up_command


def test_the_url_of_the_listening_line(tmp_path):
    code = "import time; print('starting'); print('LISTENING http://127.0.0.1:9'); time.sleep(60)"
    proc, url = start_listening([sys.executable, "-c", code], tmp_path / "log", timeout_s=30)
    try:
        assert url == "http://127.0.0.1:9"
    finally:
        proc.kill()
        proc.wait()


def test_an_early_exit_raises_with_the_log(tmp_path):
    code = "print('boom'); raise SystemExit(3)"
    with pytest.raises(RuntimeError, match="exited with 3:\\nboom"):
        start_listening([sys.executable, "-c", code], tmp_path / "log", timeout_s=30)


def test_silence_is_stopped_after_the_timeout(tmp_path):
    code = "import time; time.sleep(60)  # silent-child-marker"
    with pytest.raises(RuntimeError, match="no LISTENING line within 0.5 s"):
        start_listening([sys.executable, "-c", code], tmp_path / "log", timeout_s=0.5)
    alive = [p for p in psutil.Process().children()
             if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
             and "silent-child-marker" in " ".join(p.cmdline())]
    assert alive == [], "the silent process was stopped, not left running"


def test_up_command_asks_for_a_free_port(tmp_path):
    cmd = up_command(tmp_path / "stack.yml", tmp_path / "state", "--queue-limit", "5")
    assert cmd[1:4] == ["-m", "scalezero", "up"] and cmd[cmd.index("--port") + 1] == "0"
    assert cmd[-2:] == ["--queue-limit", "5"]
