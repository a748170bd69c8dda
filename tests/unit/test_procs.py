"""stop_process: SIGTERM first, SIGKILL only for a process that will not go."""

import signal
import subprocess
import sys
import time

from scalezero.procs import stop_process


def test_a_process_that_exits_on_sigterm_is_not_killed():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert stop_process(proc, 10) == -signal.SIGTERM


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout():
    code = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    proc.stdout.readline()  # SIGTERM is ignored from here on
    start = time.monotonic()
    assert stop_process(proc, 0.5, kill_timeout_s=5) == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - start < 5
    proc.stdout.close()


def test_an_exited_process_just_reports_its_code():
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait(10)
    assert stop_process(proc) == 3
