"""Azure trace replay: every minute of the window keeps its exact count."""

from collections import Counter

import pytest

from scalezero.errors import ConfigError
from scalezero.loadgen.profile import parse_profile
from scalezero.loadgen.trace import DEFAULT_TRACE, read_trace


def per_minute(arrivals, minute_s, function):
    c = Counter(int(a.t // minute_s) for a in arrivals if a.function == function)
    return c


def window(row, start, minutes):
    return row.counts[start - 1:start - 1 + minutes]


def test_bundled_trace_has_ten_rows_of_a_day():
    rows = read_trace(DEFAULT_TRACE)
    assert len(rows) == 10 and all(len(r.counts) == 1440 for r in rows)


@pytest.mark.parametrize("arrivals", ["uniform", "poisson"])
def test_top_rows_per_minute_counts_reproduced_after_compression(arrivals):
    rows = read_trace(DEFAULT_TRACE)
    start, minutes, compression = 1, 20, 30.0
    p = parse_profile(f"trace:start={start},minutes={minutes},compression={compression},"
                      f"top=2,arrivals={arrivals},seed=4")
    sched = p.schedule(["a", "b"], p.natural_duration_s)
    assert p.natural_duration_s == pytest.approx(40.0)
    busiest = sorted(rows, key=lambda r: -sum(window(r, start, minutes)))[:2]
    for fn, row in zip(["a", "b"], busiest):
        got = per_minute(sched, 60 / compression, fn)
        assert [got.get(m, 0) for m in range(minutes)] == list(window(row, start, minutes))
    assert {a.tag for a in sched} == {r.key[:12] for r in busiest}


def test_explicit_mapping_file_by_hash_prefix(tmp_path):
    rows = read_trace(DEFAULT_TRACE)
    # why: a window where the sparse row 1b46c1a2 has traffic nearly every minute
    target = next(r for r in rows if r.key.startswith("1b46c1a2"))
    mapping = tmp_path / "map.yml"
    mapping.write_text("1b46c1a2: yolo-detect\n")
    p = parse_profile(f"trace:start=100,minutes=30,compression=60,mapping={mapping}")
    sched = p.schedule(["ignored"], p.natural_duration_s)
    assert {a.function for a in sched} == {"yolo-detect"}
    got = per_minute(sched, 1.0, "yolo-detect")
    assert [got.get(m, 0) for m in range(30)] == list(window(target, 100, 30))


def test_round_robin_when_more_rows_than_functions():
    p = parse_profile("trace:minutes=5,compression=60,top=4")
    sched = p.schedule(["a", "b"], p.natural_duration_s)
    tags_per_fn = {fn: {a.tag for a in sched if a.function == fn} for fn in "ab"}
    assert all(len(t) == 2 for t in tags_per_fn.values())


def test_duration_cuts_the_window():
    p = parse_profile("trace:minutes=10,compression=60,top=1")
    assert all(a.t < 3 for a in p.schedule(["a"], 3.0))


@pytest.mark.parametrize("text, message", [
    ("HashFunction,HashApp,HashOwner,minute_1\nabc,x,y,two\n", "not a number"),
    ("something,else\n", "must start with a HashFunction"),
])
def test_bad_trace_files(tmp_path, text, message):
    f = tmp_path / "t.csv"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        parse_profile(f"trace:file={f}").schedule(["a"], 60)


def test_mapping_prefix_must_match_one_row(tmp_path):
    m = tmp_path / "m.json"
    m.write_text('{"ffff": "a"}')
    with pytest.raises(ConfigError, match="'ffff' matches no row"):
        parse_profile(f"trace:mapping={m}").schedule(["a"], 60)


def test_window_validation():
    with pytest.raises(ConfigError, match="trace: minutes = 0, must be >= 1"):
        parse_profile("trace:minutes=0")
