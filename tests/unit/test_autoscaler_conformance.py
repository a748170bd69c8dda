"""`scalezero conformance kpa`: the reference cases all pass, and the runner can fail."""

import copy
import io
import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from scalezero.autoscaler import conformance

REPO = Path(__file__).resolve().parents[2]
# A copy of the reference cases (Knative's KPA behaviour), kept in the repo like the OpenFaaS spec.
CASES = REPO / "tests" / "data" / "kpa-cases.json"


def _write(tmp_path, doc) -> Path:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(doc))
    return path


def _run(path) -> tuple[int, list[str]]:
    out = io.StringIO()
    passed, failed = conformance.run(path, out=out)
    return failed, out.getvalue().splitlines()


def test_every_reference_case_passes_in_process():
    failed, lines = _run(CASES)
    doc = json.loads(CASES.read_text())
    assert failed == 0, [line for line in lines if line.startswith("FAIL")]
    assert len(lines) == len(doc["cases"]) + len(doc["supplementary_cases"])
    kinds = {c["kind"] for c in doc["cases"] + doc["supplementary_cases"]}
    assert kinds <= set(conformance.CHECKERS), "every kind of the file has a checker"


def test_excess_burst_capacity_is_exact_even_without_the_go_tolerance(tmp_path):
    doc = json.loads(CASES.read_text())
    for case in doc["cases"] + doc["supplementary_cases"]:
        case.pop("ebc_tolerance", None)
    failed, lines = _run(_write(tmp_path, doc))
    assert failed == 0, [line for line in lines if line.startswith("FAIL")]


@pytest.mark.parametrize("case_id, mutate, why", [
    ("panic_then_unpanic", lambda c: c["steps"][2]["expect"].update(desired_pods=1),
     "scaling down in panic must be caught"),
    ("timed_buckets_window_average", lambda c: c["ops"][1].update(expect=2.0), "a wrong average"),
    ("collector_record_proxied", lambda c: c["ops"][3]["expect"].update(stable_rps=30.0),
     "proxied requests counted twice"),
    ("kpa_scaler_scale_to_zero_after_grace_period",
     lambda c: c["input"].update(state_age_s=59), "scaling to zero before the grace period"),
    ("sample_size_100", lambda c: c["expect"].update(sample_size=100), "no sampling"),
])
def test_a_mutated_case_fails(tmp_path, case_id, mutate, why):
    doc = json.loads(CASES.read_text())
    doc = {"cases": [copy.deepcopy(c) for c in doc["cases"] + doc["supplementary_cases"]
                     if c["id"] == case_id]}
    mutate(doc["cases"][0])
    path = _write(tmp_path, doc)
    assert conformance.main(Namespace(file=path, only="")) == 1, why
    assert _run(path)[1][0].startswith(f"FAIL {case_id}: "), why


INIT_SPEC = {"target_value": 10, "total_value": 100, "target_burst_capacity": 200,
             "panic_threshold": 2.0, "max_scale_up_rate": 10, "max_scale_down_rate": 2,
             "stable_window_s": 60}


@pytest.mark.parametrize("ready, error, want, passes", [
    (0, None, {"panic_mode": False, "panic_started_at": None, "max_panic_pods": 0}, True),
    (1, None, {"panic_mode": False, "max_panic_pods": 1}, True),
    (5, None, {"panic_mode": True, "panic_started_at": 4.0, "max_panic_pods": 5}, True),
    (None, "other", {"panic_mode": False, "max_panic_pods": 0}, True),
    (5, None, {"panic_mode": False}, False),
])
def test_decider_init_cases(tmp_path, ready, error, want, passes):
    init = {"ready_pods_at_creation": ready, "t_created": 4.0, "expect": want}
    if error:
        init["ready_pods_error_at_creation"] = error
    path = _write(tmp_path, {"cases": [{"id": "init", "kind": "kpa_decider_init",
                                        "spec": INIT_SPEC, "inits": [init]}]})
    assert _run(path)[0] == (0 if passes else 1)


def test_unknown_kind_and_missing_fields_fail_with_a_reason(tmp_path):
    path = _write(tmp_path, {"cases": [{"id": "a", "kind": "hpa"},
                                       {"id": "b", "kind": "panic_window", "input": {}}]})
    failed, lines = _run(path)
    assert failed == 2
    assert lines[0].startswith("FAIL a: unknown kind 'hpa'")
    assert lines[1] == "FAIL b: malformed case: missing field 'stable_window_s'"


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    ('{"tests": []}', "must be a JSON object with a 'cases' list"),
    ('{"cases": [{"kind": "panic_window"}]}', "case 0 must be an object with string 'id'"),
])
def test_an_invalid_file_exits_2_with_a_clear_message(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "scalezero", "conformance", "kpa", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2
    assert message in proc.stderr


@pytest.mark.parametrize("flags", [[], ["-v"], ["--verbose"]])
def test_the_cli_prints_only_pass_lines_and_exits_0(flags):
    # Global flags come before the command (`scalezero -v conformance ...`).
    argv = [*flags, "conformance", "kpa", "tests/data/kpa-cases.json"]
    proc = subprocess.run([sys.executable, "-m", "scalezero", *argv],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines(), "the cases ran"
    assert all(line.startswith("PASS ") for line in proc.stdout.splitlines())
