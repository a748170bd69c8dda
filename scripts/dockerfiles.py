"""``make dockerfiles``: write functions/<name>/Dockerfile from one template.

Every function image is built the same way (docker/function.Dockerfile.in); what
differs per function is data (docker/functions.yml). The rendered files stay in
the function folders, so ``docker build -f functions/<name>/Dockerfile .``,
faas-cli's ``lang: dockerfile`` and the image scripts work unchanged, as the
Docker official images generate theirs from templates. ``--check`` exits 1 if a
file differs from its rendering (tests/unit/test_dockerfiles.py runs it).
"""

import argparse
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "docker" / "function.Dockerfile.in"
TABLE = REPO / "docker" / "functions.yml"
KEYS = {"summary", "env", "runtime_env", "models", "system", "build_args", "build_args_note",
        "pip_first", "ready_when", "start_period"}


def _continued(words: str) -> str:
    return f" \\\n    {words}" if words else ""


def fields(name: str, row: dict) -> dict[str, str]:
    """The template's @KEY@ values for one function's row of the table."""
    unknown = set(row) - KEYS
    if unknown or "summary" not in row:
        raise SystemExit(f"docker/functions.yml: {name}: unknown keys {sorted(unknown)} "
                         f"or no summary")
    models = row.get("models") or []
    note = row.get("build_args_note", "")
    return {
        "NAME": name, "SUMMARY": "\n# ".join(row["summary"].splitlines()),
        "MODELS_NOTE": "\n# and the model (models/, written by `make model`)" if models else "",
        "BUILD_ARGS_NOTE": "".join(f"\n# {line}" for line in note.splitlines()),
        "BUILD_ARGS": f"\n{row['build_args']}" if row.get("build_args") else "",
        "ENV": _continued(row.get("env", "")),
        "SYSTEM": f"\n{row['system']}" if row.get("system") else "",
        "PIP_FIRST": f"\n    && {row['pip_first']} \\" if row.get("pip_first") else "",
        "MODELS": ("\n# The weights are baked in: a cold start must not wait on a download.\n"
                   "COPY " + " ".join(f"models/{m}" for m in models) + " /home/app/models/")
        if models else "",
        "RUNTIME_ENV": ("\n# Defaults for a container; mount volumes at these paths "
                        f"(or set the variables).\nENV {row['runtime_env']}")
        if row.get("runtime_env") else "",
        "READY_WHEN": row.get("ready_when", "the handler is imported"),
        "START_PERIOD": row.get("start_period", "20s"),
    }


def render(name: str, row: dict, template: str) -> str:
    """functions/<name>/Dockerfile as the template and the table say."""
    text = template
    for key, value in fields(name, row).items():
        text = text.replace(f"@{key}@", value)
    if "@" in text.replace("@@", ""):
        raise SystemExit(f"{TEMPLATE.name}: a placeholder is left in {name}'s Dockerfile")
    return text


def rendered() -> dict[Path, str]:
    """Every function's Dockerfile path and its rendering."""
    table = yaml.safe_load(TABLE.read_text())
    template = TEMPLATE.read_text()
    return {REPO / "functions" / name / "Dockerfile": render(name, row, template)
            for name, row in table.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    args = parser.parse_args()
    stale = [p for p, text in rendered().items() if not p.is_file() or p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(REPO)} differs from docker/function.Dockerfile.in + "
                  "docker/functions.yml: run make dockerfiles", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.write_text(rendered()[p])
        print(f"wrote {p.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
