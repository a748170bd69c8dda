"""The command line: the parser finds the command, wherever the global flags stand."""

import logging

import pytest

from scalezero import cli


@pytest.mark.parametrize("argv, command", [
    (["list", "--gateway", "http://x"], "list"),
    (["-v", "list"], "list"),
    (["--verbose", "up", "--port", "0"], "up"),
    (["-v", "conformance", "kpa", "cases.json"], "conformance"),
    ([], None),
    (["--help"], None),
])
def test_the_command_is_found_by_the_parser(argv, command):
    assert cli.command_of(argv) == command


def test_verbose_before_the_command_parses():
    argv = ["--verbose", "conformance", "kpa", "cases.json"]
    args = cli.build_parser(cli.command_of(argv)).parse_args(argv)
    assert args.verbose and args.command == "conformance" and args.suite == "kpa"


def test_an_unknown_command_exits_2_with_the_choices(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["-v", "nope"])
    assert e.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_verbose_leaves_out_the_http_clients_per_request_lines(tmp_path):
    """--verbose on the knative backend: urllib3 would log every API poll at DEBUG."""
    logging.getLogger("urllib3").setLevel(logging.NOTSET)
    with pytest.raises(SystemExit):
        cli.main(["--verbose", "chart-values", "-f", str(tmp_path / "missing.yml")])
    assert logging.getLogger("urllib3").getEffectiveLevel() == logging.INFO
