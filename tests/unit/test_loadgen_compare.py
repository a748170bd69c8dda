"""The local-vs-cluster table of the e2e: facts read back from two run folders."""

import json
import math

from scalezero.loadgen.compare import main, run_facts, table


def write_run(d, ready, cold=(1.0, 3.0), errors=None, dropped=0):
    """A run folder as scalezero load writes it: start at t=1000, last response at t=1020."""
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"start_unix": 1000.0, "last_response_unix": 1020.0}))
    (d / "summary.json").write_text(json.dumps({
        "answered": 40, "dropped": dropped, "errors": errors or {},
        "cold_start": {"latency": {"p50_s": cold[0], "p99_s": cold[1]}}}))
    lines = [json.dumps({"t": 1000.0 + i, "s": [["gateway_service_count", {"function_name": "f"}, v],
                                                 ["gateway_service_count", {"function_name": "g"}, 9]]})
             for i, v in enumerate(ready)]
    (d / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return d


def test_facts_of_a_run_that_goes_0_n_0(tmp_path):
    ready = [0, 0, 1, 2, 3, 3] + [3] * 20 + [1, 0, 0]  # peak 3 at t=1004, 0 again at t=1027
    facts = run_facts(write_run(tmp_path / "a", ready, errors={"503": 2}, dropped=1), "f")
    assert facts["peak"] == 3 and facts["to_peak_s"] == 4.0
    assert facts["to_zero_s"] == 7.0  # 1027 - last response 1020
    assert facts["errors"] == 3 and facts["cold_p99_s"] == 3.0


def test_a_run_that_never_returned_to_zero_says_so(tmp_path):
    facts = run_facts(write_run(tmp_path / "a", [0, 1, 1] + [1] * 30), "f")
    assert math.isnan(facts["to_zero_s"])
    assert "-" in table({"cluster": facts}).splitlines()[2]


def test_the_table_has_a_row_per_platform(tmp_path, capsys):
    write_run(tmp_path / "l", [0, 1, 2] + [2] * 20 + [0], cold=(0.2, 0.4))
    write_run(tmp_path / "k", [0, 0, 0, 1, 2] + [2] * 30 + [0], cold=(2.5, 6.0))
    assert main(["-f", "f", f"local={tmp_path / 'l'}", f"cluster={tmp_path / 'k'}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["platform", "cold", "p50"]
    assert lines[2].startswith("local") and "0.2 s" in lines[2] and "0.4 s" in lines[2]
    assert lines[3].startswith("cluster") and "2.5 s" in lines[3] and "6.0 s" in lines[3]
