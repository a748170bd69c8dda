"""The /system/logs query (OpenFaaS's logs.Request) and which lines it selects."""

import pytest

from scalezero.backends.base import LogLine
from scalezero.errors import BadRequest
from scalezero.gateway.logstream import history, newer, parse_query

LINES = [LogLine(100.0 + i, f"f-{i % 2}", f"line {i}") for i in range(6)]


@pytest.mark.parametrize("query, want", [
    ({"name": "f"}, dict(tail=0, since=None, follow=False)),  # defaults: all, no follow
    ({"name": "f", "follow": "1", "tail": "3"}, dict(tail=3, follow=True)),  # faas-cli's 0|1
    ({"name": "f", "follow": "false", "tail": "-1"}, dict(tail=-1, follow=False)),
    ({"name": "f", "since": "1970-01-01T00:01:43Z"}, dict(since=103.0)),  # RFC 3339, UTC
    ({"name": "f", "since": "1970-01-01T01:01:43.5+01:00"}, dict(since=103.5)),  # offset
])
def test_parse_query(query, want):
    q = parse_query(query)
    assert {k: getattr(q, k) for k in want} == want


@pytest.mark.parametrize("query, named", [
    ({}, "name"), ({"name": "f", "tail": "x"}, "tail"), ({"name": "f", "follow": "yes!"},
                                                         "follow"),
    ({"name": "f", "since": "1 hour ago"}, "since")])
def test_bad_parameters_are_400s_naming_them(query, named):
    with pytest.raises(BadRequest, match=named):
        parse_query(query)


def test_since_then_tail_then_instance():
    q = parse_query({"name": "f", "since": "1970-01-01T00:01:42Z", "tail": "2"})
    assert [ln.text for ln in history(LINES, q)] == ["line 4", "line 5"]
    q = parse_query({"name": "f", "instance": "f-0"})
    assert [ln.text for ln in history(LINES, q)] == ["line 0", "line 2", "line 4"]


def test_newer_is_what_came_after_the_last_line_sent():
    assert newer(LINES, None) == LINES
    assert newer(LINES, LINES[3]) == LINES[4:]
    assert newer(LINES, LINES[-1]) == []
    gone = LogLine(102.5, "f-0", "rotated out of the buffer")
    assert newer(LINES, gone) == LINES[3:]
