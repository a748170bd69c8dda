"""What the proxy passes on: the path after the prefix, the query, end-to-end headers."""

import pytest

from scalezero.gateway.proxy import clean_headers, target_url


@pytest.mark.parametrize("path, query, expect", [
    ("/", "", "http://i:1/"),
    ("/detect", "x=1&y=%20", "http://i:1/detect?x=1&y=%20"),
    ("/a%2Fb", None, "http://i:1/a%2Fb"),
    ("", "", "http://i:1/"),
])
def test_target_url_keeps_path_and_query_verbatim(path, query, expect):
    assert str(target_url("http://i:1/", path, query)) == expect


def test_hop_by_hop_and_empty_bearer_are_dropped():
    out = clean_headers([("Connection", "close"), ("Host", "gw"), ("Content-Length", "3"),
                         ("Authorization", "Bearer "), ("X-Call-Id", "1"),
                         ("Content-Type", "image/jpeg")])
    assert dict(out) == {"X-Call-Id": "1", "Content-Type": "image/jpeg"}
    assert clean_headers({"Authorization": "Bearer t0k"})["Authorization"] == "Bearer t0k"
