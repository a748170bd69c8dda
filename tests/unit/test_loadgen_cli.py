"""`scalezero load` and `scalezero report` through the real CLI entry point."""

import json
import subprocess
import sys


def scalezero(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "scalezero", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_load_then_report_without_a_gateway(tmp_path):
    run = tmp_path / "run"
    # port 9 (discard) refuses: every request is a client error, counted, none hidden
    done = scalezero("load", "-g", "http://127.0.0.1:9", "-f", "echo", "-p", "constant:rate=10",
                     "-d", "0.5", "--timeout", "2", "-o", str(run), "-q")
    assert done.returncode == 0, done.stderr
    assert "scheduled 5, sent 5, answered 0" in done.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["scheduled"] == 5 and sum(summary["errors"].values()) == 5
    assert summary["latency"]["p99_s"] is None  # NaN is written as null
    report = scalezero("report", str(run))
    assert report.returncode == 0, report.stderr
    assert (run / "timeline.png").exists() and "echo" in report.stdout


def test_bad_profile_exits_2_with_the_reason(tmp_path):
    done = scalezero("load", "-f", "x", "-p", "spike:peak=-1", "-o", str(tmp_path / "r"))
    assert done.returncode == 2
    assert "spike: peak = -1.0, must be >= 0" in done.stderr


def test_report_of_a_folder_that_is_not_a_run(tmp_path):
    done = scalezero("report", str(tmp_path))
    assert done.returncode == 2 and "not a load run folder" in done.stderr
