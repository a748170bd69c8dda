"""Failed starts: the error line picked from an instance's log, and the restart backoff."""

import pytest

from scalezero.backends.startfail import BackoffConfig, StartHealth, error_line
from scalezero.errors import ConfigError

TRACE = [
    "2026-12-02 01:00:00,000 ERROR scalezero.runtime.loader: loading the handler from /f failed",
    "Traceback (most recent call last):",
    '  File "/f/handler.py", line 1, in <module>',
    "    import humanize",
    "ModuleNotFoundError: No module named 'humanize'",
    "2026-12-02 01:00:00,100 INFO scalezero.runtime.serve: instance of f stopped",
    "[scalezero] instance exited unexpectedly (code 1)",
]


@pytest.mark.parametrize("lines, line", [
    (TRACE, "ModuleNotFoundError: No module named 'humanize'"),
    # A chained traceback: the last one says what finally went wrong.
    (["Traceback (most recent call last):", "  x", "KeyError: 'a'", "", "During handling...",
      "Traceback (most recent call last):", "  y", "RuntimeError: config missing"],
     "RuntimeError: config missing"),
    (["starting", "2026-12-02 01:00:00,000 ERROR x.y: SystemExit: 3"], "SystemExit: 3"),
    (["python: can't open file 'serve.py'", "[scalezero] instance exited unexpectedly (code 2)"],
     "python: can't open file 'serve.py'"),
    ([], "it printed nothing"),
])
def test_error_line_is_the_exception_of_the_last_traceback(lines, line):
    assert error_line(lines) == line


def test_backoff_doubles_up_to_the_cap_and_a_ready_instance_resets_it():
    health = StartHealth(BackoffConfig(base_s=1, cap_s=5))
    waits = []
    for _ in range(5):
        health.failed("f", "E: x", "f-1", 1, now=100.0)
        waits.append(health.wait_s(now=100.0))
    assert waits == [1, 2, 4, 5, 5]
    assert health.last.failures == 5 and "5 failed starts in a row" in health.last.message(now=100.0)
    assert health.wait_s(now=106.0) == 0
    health.ready()
    assert health.last is None and health.wait_s() == 0


def test_the_message_names_the_function_the_error_and_the_next_try():
    failure = StartHealth(BackoffConfig()).failed("needs-lib", "ImportError: x", "needs-lib-1", 1,
                                                  now=10.0)
    text = failure.message(now=10.0)
    assert text.startswith("function needs-lib failed to start: ImportError: x (instance "
                           "needs-lib-1 exited with code 1 before it was ready, 1 failed start")
    assert "next start in 1 s" in text and "scalezero logs needs-lib" in text


@pytest.mark.parametrize("kw, message", [({"base_s": 0}, "base_s = 0"),
                                         ({"base_s": 2, "cap_s": 1}, "cap_s = 1")])
def test_bad_backoff_settings(kw, message):
    with pytest.raises(ConfigError, match=message):
        BackoffConfig(**kw)


def test_a_failed_start_is_not_broken_while_another_start_runs():
    """Gateway._broken with a start failure and an instance starting (it named STARTING
    without importing it: a NameError in every on_change after a failed start)."""
    import asyncio

    from fakes import FakeBackend, FakeClock
    from scalezero.backends.base import DEAD, Instance
    from scalezero.gateway.app import build_gateway
    from scalezero.gateway.core import GatewayConfig

    class Backend(FakeBackend):
        def start_error(self, name):
            return "the last start failed"

    async def go():
        backend = Backend()
        gw = build_gateway(GatewayConfig(), backend=backend, clock=FakeClock())
        backend.insts["f"] = [Instance("f-1", "f", "http://fake/1")]  # STARTING
        starting = gw._broken("f")
        backend.insts["f"][0].state = DEAD
        return starting, gw._broken("f")

    starting, dead = asyncio.run(go())
    assert starting is None and dead == "the last start failed"
