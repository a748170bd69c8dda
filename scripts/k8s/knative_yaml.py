#!/usr/bin/env python3
"""Knative Serving's release YAML, generated from its modules' config/ folders.

A release's serving-crds.yaml and serving-core.yaml are `ko resolve` over
serving's config/core; some of its files there are symlinks into
knative.dev/networking and knative.dev/caching, which a module zip drops, so
those come from those modules' config/ folders. Image references
``ko://knative.dev/serving/cmd/NAME`` become ``REPO/NAME:TAG`` (the images the
toolchain built), and the ``devel`` release labels the release's version.

    usage: knative_yaml.py SERVING_DIR NETWORKING_DIR CACHING_DIR REPO TAG OUT_DIR
Writes OUT_DIR/serving-crds.yaml (every CustomResourceDefinition) and
OUT_DIR/serving-core.yaml (everything else), in ko's order (sorted paths).
"""

import re
import sys
from pathlib import Path

# The networking and caching files serving's config/core links to.
NETWORKING_FILES = ("certificate.yaml", "domain-claim.yaml", "ingress.yaml",
                    "serverlessservice.yaml", "config-network.yaml")
CACHING_FILES = ("image.yaml",)
KO_REF = re.compile(r"ko://knative\.dev/serving/cmd/([a-z-]+)")


def documents(path: Path) -> list[str]:
    """The non-empty YAML documents of one file (split on '---' lines)."""
    docs = re.split(r"^---[ \t]*$", path.read_text(), flags=re.MULTILINE)
    return [d.strip("\n") + "\n" for d in docs if re.search(r"^kind:", d, re.MULTILINE)]


def rewrite(doc: str, repo: str, tag: str) -> str:
    doc = KO_REF.sub(lambda m: f"{repo}/{m.group(1)}:{tag}", doc)
    doc = re.sub(r'(app\.kubernetes\.io/version|serving\.knative\.dev/release): "?devel"?',
                 lambda m: f'{m.group(1)}: "{tag}"', doc)
    return doc


def sources(serving: Path, networking: Path, caching: Path) -> list[Path]:
    core = sorted(p for p in (serving / "config" / "core").rglob("*.yaml"))
    return (core + [networking / "config" / f for f in NETWORKING_FILES]
            + [caching / "config" / f for f in CACHING_FILES])


def main(argv: list[str]) -> int:
    if len(argv) != 7:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    serving, networking, caching = (Path(a) for a in argv[1:4])
    repo, tag, out = argv[4], argv[5], Path(argv[6])
    crds, core = [], []
    for path in sources(serving, networking, caching):
        if not path.is_file():
            print(f"knative_yaml: missing {path}", file=sys.stderr)
            return 1
        for doc in documents(path):
            doc = rewrite(doc, repo, tag)
            (crds if re.search(r"^kind: CustomResourceDefinition", doc, re.MULTILINE) else core).append(doc)
    left = [d for d in core if "ko://" in d]
    if left:
        print(f"knative_yaml: ko:// references left unresolved: {left[0][:200]}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    (out / "serving-crds.yaml").write_text("---\n".join(crds))
    (out / "serving-core.yaml").write_text("---\n".join(core))
    print(f"knative_yaml: {len(crds)} CRDs, {len(core)} other objects -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
