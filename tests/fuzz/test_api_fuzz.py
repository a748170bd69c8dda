"""Schemathesis against the real `scalezero up` with the OpenFaaS gateway spec.

Every check schemathesis has (no 5xx, documented status codes, content types,
response schemas, 405 for undeclared methods, ...) on every operation of the
spec, with a pinned seed and a bounded number of examples (about 20-60 s).
The exclusions, each for one operation and one check with its reason, are in
tests/fuzz/schemathesis.toml.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from platform_helpers import start_gateway
from procs import REPO
from reliability import recorder_function

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
SPEC = REPO / "tests" / "data" / "openfaas-gateway-spec.yml"
SEED, EXAMPLES = 20261125, 100


@pytest.fixture
def gw(tmp_path):
    p = start_gateway(tmp_path, {"recorder": recorder_function(tmp_path / "record.txt")})
    yield p
    p.stop()


def test_schemathesis_finds_no_server_error_and_no_spec_violation(gw, tmp_path):
    st = Path(sys.executable).with_name("st")
    cmd = [str(st), "--config-file", str(HERE / "schemathesis.toml"), "run", str(SPEC),
           "--url", gw.url, "--auth", f"{gw.user}:{gw.password}", "--seed", str(SEED),
           "-n", str(EXAMPLES), "--no-color", "--generation-database", "none",
           "--request-timeout", "30", "-w", "1",
           "--report", "junit", "--report-dir", str(tmp_path / "report")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    summary = out.stdout[out.stdout.find("SUMMARY"):]
    print(summary)
    assert out.returncode == 0, out.stdout[-8000:] + out.stderr[-2000:]
    assert f"Seed: {SEED}" in summary and " passed" in summary
    assert "unhandled error" not in gw.log()
