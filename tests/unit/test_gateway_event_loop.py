"""``scalezero up --event-loop``: asyncio's loop by default, uvloop on request (when installed)."""

import argparse
import asyncio
import importlib.util

import pytest

from scalezero.errors import ConfigError
from scalezero.gateway import app


def parse(*argv):
    parser = argparse.ArgumentParser()
    app.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_asyncio_is_the_default_and_runs_a_coroutine():
    runner = app.run_loop(parse().event_loop)
    assert runner is asyncio.run

    async def answer():
        return 42
    assert runner(answer()) == 42


def test_uvloop_when_installed_else_a_clear_error():
    if importlib.util.find_spec("uvloop") is None:
        with pytest.raises(ConfigError, match="uvloop is not installed"):
            app.run_loop("uvloop")
    else:
        import uvloop
        assert app.run_loop(parse("--event-loop", "uvloop").event_loop) is uvloop.run


def test_an_unknown_loop_is_refused():
    with pytest.raises(SystemExit):
        parse("--event-loop", "trio")
