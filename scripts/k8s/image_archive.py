#!/usr/bin/env python3
"""Write a `docker save` archive of IMAGES to OUT with every tag fully qualified.

Docker writes Docker Hub names short (``kindest/kindnetd:v1``) in an archive's
``manifest.json`` and ``repositories``; kind's node-image builder compares those
tags with the full names it needs (``docker.io/kindest/kindnetd:v1``) and pulls
whatever does not match. Writing the names in full makes it side-load them.

    usage: image_archive.py OUT.tar IMAGE...   (DOCKER overrides /usr/bin/docker)
"""

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile


def qualify(ref: str) -> str:
    """``name[:tag]`` with Docker's default registry spelled out, as containerd names it."""
    first = ref.split("/", 1)[0]
    if "/" in ref and ("." in first or ":" in first or first == "localhost"):
        return ref
    return "docker.io/" + (ref if "/" in ref else "library/" + ref)


def rewrite(member: tarfile.TarInfo, data: bytes) -> bytes:
    if member.name == "manifest.json":
        manifest = json.loads(data)
        for entry in manifest:
            entry["RepoTags"] = [qualify(t) for t in entry.get("RepoTags") or []]
        return json.dumps(manifest).encode()
    if member.name == "repositories":
        return json.dumps({qualify(repo): tags for repo, tags in json.loads(data).items()}).encode()
    return data


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out, images = argv[1], argv[2:]
    docker = os.environ.get("DOCKER", "/usr/bin/docker")
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as tmp:
        saved = os.path.join(tmp, "saved.tar")
        subprocess.run([docker, "save", "-o", saved, *images], check=True)
        with tarfile.open(saved) as src, tarfile.open(out + ".tmp", "w") as dst:
            # kind reads whichever of repositories / manifest.json comes first, and
            # from manifest.json only its first image: repositories (every tag) goes first.
            members = sorted(src.getmembers(), key=lambda m: m.name != "repositories")
            for member in members:
                if not member.isfile():
                    dst.addfile(member)
                    continue
                data = rewrite(member, src.extractfile(member).read())
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))
    os.replace(out + ".tmp", out)
    print(f"image_archive: {out}: {' '.join(qualify(i) for i in images)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
