"""The ``scalezero`` command: parse flags, call one library function, exit.

Each command lives in the module that owns it, imported only when that command
runs (so ``scalezero invoke`` never pays for onnxruntime or torch). A command
module provides ``add_arguments(parser)`` and ``main(args) -> int``.
Only this module calls ``sys.exit``.
"""

import argparse
import importlib
import logging
import sys

from scalezero.errors import ScalezeroError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run-function": ("scalezero.runtime.serve", "run one function instance (the watchdog)"),
    "model": ("scalezero.model", "export YOLO models to ONNX (model export)"),
    "up": ("scalezero.gateway.app", "start the gateway with every function of stack.yml"),
    "ingress": ("scalezero.gateway.kingress", "serve Knative Ingress objects (Knative's network layer)"),
    "deploy": ("scalezero.client", "deploy functions of stack.yml to a gateway"),
    "remove": ("scalezero.client", "remove a function"),
    "list": ("scalezero.client", "list functions with their instances and invocations"),
    "describe": ("scalezero.client", "show one function"),
    "invoke": ("scalezero.client", "invoke a function with stdin as the body"),
    "scale": ("scalezero.client", "set a function's replica count"),
    "logs": ("scalezero.client", "show a function's instance logs"),
    "conformance": ("scalezero.autoscaler.conformance", "run autoscaler conformance cases"),
    "load": ("scalezero.loadgen.run", "send open-loop synthetic traffic"),
    "report": ("scalezero.loadgen.report", "plot a scaling timeline from a load run"),
    "chart-values": ("scalezero.chart", "write Helm values for the functions of stack.yml"),
    "watch": ("scalezero.events", "turn files appearing in a folder into storage events"),
}


def _global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def command_of(argv: list[str]) -> str | None:
    """The command named in ``argv``, found by a parser, so global options may come first."""
    pre = argparse.ArgumentParser(add_help=False)
    _global_options(pre)
    pre.add_argument("command", nargs="?")
    known, _ = pre.parse_known_args(argv)
    return known.command


def build_parser(wanted: str | None = None) -> argparse.ArgumentParser:
    """The full parser; only the module of ``wanted`` is imported and adds its options."""
    parser = argparse.ArgumentParser(prog="scalezero", description=__doc__.splitlines()[0])
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        # Import only the module of the command being run; `--help` lists names only.
        if name == wanted:
            mod = importlib.import_module(module)
            mod.add_arguments(p) if name not in _SHARED else mod.add_arguments(p, name)
            p.set_defaults(_module=mod)
    return parser


# Modules that serve several commands get the command name too.
_SHARED = {name for name, (m, _) in COMMANDS.items() if m == "scalezero.client"}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(command_of(argv)).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # --verbose is scalezero's debug log: the Kubernetes client's one line per API call
    # (the knative backend polls every 2 s) would bury it.
    logging.getLogger("urllib3").setLevel(logging.INFO)
    try:
        code = args._module.main(args)
    except ScalezeroError as e:
        print(f"scalezero {args.command}: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
