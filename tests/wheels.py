"""Build a tiny pure-Python wheel in a test (PEP 427 layout), so pip installs from a folder.

Tests of requirements.txt install from ``--find-links <folder> --no-index``: no registry,
no network, and no build backend needed (the wheel is written as a zip here).
"""

import base64
import hashlib
import zipfile
from pathlib import Path


def build_wheel(dest: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` holding ``files`` (path -> source) into
    ``dest``; returns its path."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    contents = dict(files)
    contents[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    contents[f"{info}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: scalezero-tests\n"
                                 "Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = [f"{path},sha256={_digest(text.encode())},{len(text.encode())}"
              for path, text in contents.items()]
    contents[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in contents.items():
            z.writestr(path, text)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
