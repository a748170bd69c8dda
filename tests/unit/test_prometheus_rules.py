"""The local Prometheus config, the rules and the alerts, checked by promtool itself."""

import shutil
import string
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "scalezero" / "rules" / "scalezero.rules.yml"
pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (apt-get install prometheus); CI installs it")


def promtool(*args, cwd=ROOT):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_check_config():
    done = promtool("check", "config", "monitoring/prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout


def test_check_rules():
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_scenarios():
    # stuck at zero, error ratio (and its 0 series without 5xx), scale-up lag, slow cold start
    done = promtool("test", "rules", "scalezero.rules.test.yml", cwd=ROOT / "monitoring" / "tests")
    assert done.returncode == 0, done.stdout + done.stderr


def test_template_renders_to_a_valid_config(tmp_path):
    text = string.Template((ROOT / "monitoring" / "prometheus.yml.tmpl").read_text())
    config = tmp_path / "prometheus.yml"
    config.write_text(text.substitute(gateway="127.0.0.1:18080", rules=RULES))
    done = promtool("check", "config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "127.0.0.1:18080" in config.read_text()


def test_a_broken_rule_is_caught(tmp_path):
    # why: proves the check above can fail (promtool rejects bad PromQL)
    bad = tmp_path / "bad.yml"
    bad.write_text(RULES.read_text().replace("sum by (function_name) (rate(", "sum by (function_name (rate(", 1))
    assert promtool("check", "rules", str(bad)).returncode != 0
