"""``scalezero conformance kpa FILE``: run Knative KPA conformance cases.

FILE has the format of ``ref/kpa-cases.json``: ``cases`` and optional
``supplementary_cases``, each case with an ``id`` and a ``kind`` (see
``checks.CHECKERS``). Prints ``PASS <id>`` or ``FAIL <id>: <why>`` per case on
stdout, a summary on stderr; exits 1 if any case fails, 2 if FILE is unreadable.
"""

import argparse
import json
import sys
from pathlib import Path

from scalezero.autoscaler.checks import CHECKERS, CaseFailure
from scalezero.errors import ConfigError

SECTIONS = ("cases", "supplementary_cases")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    suites = parser.add_subparsers(dest="suite", metavar="SUITE", required=True)
    kpa = suites.add_parser("kpa", help="Knative KPA autoscaler cases (format of kpa-cases.json)")
    kpa.add_argument("file", type=Path, metavar="FILE", help="the cases file (JSON)")
    kpa.add_argument("-k", dest="only", default="", metavar="TEXT",
                     help="run only the cases whose id contains TEXT")


def load_cases(path: Path) -> list[dict]:
    """Every case of the file, main then supplementary; ConfigError if it is not such a file."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise ConfigError(f"{path} must be a JSON object with a 'cases' list")
    cases = [c for section in SECTIONS for c in doc.get(section) or []]
    for n, case in enumerate(cases):
        if not isinstance(case, dict) or not isinstance(case.get("id"), str) \
                or not isinstance(case.get("kind"), str):
            raise ConfigError(f"{path}: case {n} must be an object with string 'id' and 'kind'")
    return cases


def run_case(case: dict) -> str | None:
    """None when the case passes, else why it failed."""
    checker = CHECKERS.get(case["kind"])
    if checker is None:
        return f"unknown kind {case['kind']!r} (known: {', '.join(sorted(CHECKERS))})"
    try:
        checker(case)
    except CaseFailure as e:
        return str(e)
    except KeyError as e:
        return f"malformed case: missing field {e}"
    except (TypeError, ValueError, AttributeError) as e:
        return f"malformed case: {e}"
    return None


def run(path: Path, only: str = "", out=sys.stdout) -> tuple[int, int]:
    """Run and print every case of ``path``; return (passed, failed)."""
    passed = failed = 0
    for case in load_cases(path):
        if only not in case["id"]:
            continue
        why = run_case(case)
        print(f"PASS {case['id']}" if why is None else f"FAIL {case['id']}: {why}", file=out)
        passed, failed = passed + (why is None), failed + (why is not None)
    return passed, failed


def main(args: argparse.Namespace) -> int:
    passed, failed = run(args.file, args.only)
    print(f"{passed} passed, {failed} failed ({args.file})", file=sys.stderr)
    return 1 if failed else 0
