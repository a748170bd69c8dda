"""Function secrets: stored by the gateway, read by functions as files.

As in OpenFaaS, a function that lists ``secrets: [NAME]`` reads each one from
``/var/openfaas/secrets/NAME`` in its image (docker backend: a read-only bind
mount; Kubernetes: a Secret volume). The process backend has no such root
folder to offer, so each instance gets its own copy in a private folder and the
environment variable ``SECRETS_DIR_ENV`` names it.

The gateway keeps values in ``<state dir>/secrets/<name>``: folder mode 0700,
files 0600, written atomically. Values are never logged and never listed: the
API answers names only.
"""

import base64
import binascii
import os
import shutil
import tempfile
from pathlib import Path

from scalezero.errors import BadRequest, Conflict, FunctionNotFound
from scalezero.stack import SECRET_NAME_RE

SECRETS_DIR = "/var/openfaas/secrets"  # where OpenFaaS mounts secrets in a function's image
SECRETS_DIR_ENV = "SCALEZERO_SECRETS_DIR"  # process backend: this instance's secrets folder


class SecretNotFound(FunctionNotFound):
    """404 for a secret (the same status as a missing function)."""


def check_secret_name(name) -> str:
    if not isinstance(name, str) or not SECRET_NAME_RE.match(name):
        raise BadRequest(f"secret name {name!r} is invalid: use lower-case letters, digits, "
                         "'-' and '.', starting and ending with a letter or digit")
    return name


def value_from(doc: dict) -> bytes:
    """A Secret body's value: ``value`` (text) or else ``rawValue`` (base64)."""
    if isinstance(doc.get("value"), str) and doc["value"] != "":
        return doc["value"].encode()
    raw = doc.get("rawValue")
    if isinstance(raw, str) and raw != "":
        try:
            return base64.b64decode(raw, validate=True)
        except binascii.Error:
            raise BadRequest("rawValue must be base64") from None
    raise BadRequest("a secret needs value (text) or rawValue (base64)")


class SecretStore:
    """Secrets in one folder, one file each."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.name for p in self.directory.iterdir()
                      if p.is_file() and SECRET_NAME_RE.match(p.name))

    def exists(self, name: str) -> bool:
        return (self.directory / check_secret_name(name)).is_file()

    def create(self, name: str, value: bytes) -> None:
        if self.exists(name):
            raise Conflict(f"secret {name} already exists; use PUT to update it")
        self._write(name, value)

    def update(self, name: str, value: bytes) -> None:
        if not self.exists(name):
            raise SecretNotFound(f"secret {name} not found; create it with POST first")
        self._write(name, value)

    def delete(self, name: str) -> None:
        if not self.exists(name):
            raise SecretNotFound(f"secret {name} not found")
        (self.directory / name).unlink()

    def path(self, name: str) -> Path:
        """The file holding ``name``; SecretNotFound if there is none."""
        if not self.exists(name):
            raise SecretNotFound(f"secret {name} not found: create it first "
                                 f"(faas-cli secret create {name} --from-literal ...)")
        return self.directory / name

    def _write(self, name: str, value: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(value)
            os.replace(tmp, self.directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def copy_into(self, names: tuple[str, ...], target: Path, shared: bool = False) -> Path:
        """A folder at ``target`` with a copy of each named secret: 0700/0600, or with
        ``shared`` 0755/0644 (for a container's user; its parent folder stays 0700).

        A secret that does not exist is an error naming it (the instance would
        otherwise start and fail on its first read).
        """
        sources = [self.path(n) for n in names]
        folder_mode, file_mode = (0o755, 0o644) if shared else (0o700, 0o600)
        target.mkdir(parents=True, exist_ok=True, mode=folder_mode)
        os.chmod(target, folder_mode)
        for name, src in zip(names, sources):
            shutil.copyfile(src, target / name)
            os.chmod(target / name, file_mode)
        return target


class InstanceSecrets:
    """The process backend's secrets folders: ``<private temp dir>/<instance id>/<name>``.

    Made before an instance starts, removed when it exits and, all of them, at close.
    """

    def __init__(self, store: SecretStore | None = None):
        self.store = store  # None until the gateway gives one (a backend made alone)
        self._root: Path | None = None

    def env_for(self, names: tuple[str, ...], instance_id: str) -> dict[str, str]:
        """``{SECRETS_DIR_ENV: folder}`` with the named secrets in it; {} when none are named."""
        folder = self.folder(names, instance_id)
        return {SECRETS_DIR_ENV: str(folder)} if folder else {}

    def folder(self, names: tuple[str, ...], instance_id: str,
               shared: bool = False) -> Path | None:
        """The instance's folder holding copies of ``names`` (None when none are named)."""
        if not names:
            return None
        if self.store is None:
            raise BadRequest(f"secrets {', '.join(names)} named but this backend has no "
                             "secret store (start the gateway with scalezero up)")
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="scalezero-secrets-"))  # mode 0700
        return self.store.copy_into(names, self._root / instance_id, shared)

    def release(self, instance_id: str) -> None:
        if self._root is not None:
            shutil.rmtree(self._root / instance_id, ignore_errors=True)

    def close(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


def give_secrets(backend, store: SecretStore) -> None:
    """Let a backend that reads secrets (process, docker) read them from ``store``."""
    holder = getattr(backend, "secrets", None)
    if isinstance(holder, InstanceSecrets):
        holder.store = store
