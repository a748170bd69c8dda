"""The gateway's connection-level limits: parser error messages, config, per-client counts."""

import pytest
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from scalezero.errors import ConfigError
from scalezero.gateway.edge import ClientConnections, EdgeConfig, parse_error


@pytest.mark.parametrize("exc, status, reason", [
    (LineTooLong(b"Basic secret-token" * 10, 1024), 431, "LineTooLong"),
    (BadHttpMessage("Too many headers received"), 431, "Too many headers received"),
    (BadHttpMessage("Invalid header value char:\n\n  b'Authorization: Basic secret-token'\n"
                    "    ^"), 400, "Invalid header value char"),
    (BadHttpMessage("Invalid character in Content-Length: b'secret-token'"), 400,
     "Invalid character in Content-Length"),
])
def test_parse_errors_keep_the_reason_and_drop_the_bytes(exc, status, reason):
    got_status, message = parse_error(exc, 400)
    assert got_status == status and reason in message
    assert "secret-token" not in message and "b'" not in message


@pytest.mark.parametrize("field, value, message", [
    ("header_timeout_s", 0, "header_timeout_s = 0, must be > 0"),
    ("idle_timeout_s", -1, "idle_timeout_s = -1, must be > 0"),
    ("max_conns_per_client", 0, "max_conns_per_client = 0, must be >= 1"),
])
def test_edge_config_says_what_is_wrong(field, value, message):
    with pytest.raises(ConfigError, match=message):
        EdgeConfig(**{field: value})


def test_client_connections_are_counted_per_address():
    clients = ClientConnections(2)
    assert clients.admit("127.0.0.2") and clients.admit("127.0.0.2")
    assert not clients.admit("127.0.0.2") and clients.admit("127.0.0.1")
    clients.release("127.0.0.2")
    assert clients.admit("127.0.0.2")
    for _ in range(2):
        clients.release("127.0.0.2")
    assert "127.0.0.2" not in clients.open
