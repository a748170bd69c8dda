"""Basic auth for ``/system/*`` and where its credentials come from.

As in OpenFaaS: the user is ``admin`` unless configured, the password comes from
configuration or is generated at first start and stored in a file only the user
can read (mode 0600); ``scalezero`` client commands read the same file.
Invocations (``/function/*``), ``/healthz`` and ``/metrics`` need no credentials.
"""

import base64
import binascii
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from scalezero.errors import ConfigError

USER_ENV, PASSWORD_ENV, STATE_ENV = "SCALEZERO_USER", "SCALEZERO_PASSWORD", "SCALEZERO_STATE_DIR"
REALM = 'Basic realm="Restricted"'


@dataclass(frozen=True)
class Credentials:
    """The gateway's admin user and password."""

    user: str  # basic-auth user name (OpenFaaS: admin)
    password: str  # basic-auth password

    def check(self, header: str | None) -> bool:
        """True if an ``Authorization`` header carries these credentials."""
        if not header or not header[:6].lower() == "basic ":
            return False
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        # Both compared in constant time, so timing says nothing about either.
        ok_user = hmac.compare_digest(user.encode(), self.user.encode())
        ok_pass = hmac.compare_digest(password.encode(), self.password.encode())
        return ok_user and ok_pass

    def header(self) -> str:
        """The ``Authorization`` value a client sends."""
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"


def state_dir(flag: str | None, env: dict[str, str]) -> Path:
    """--state-dir, else $SCALEZERO_STATE_DIR, else ~/.config/scalezero."""
    if flag:
        return Path(flag).expanduser()
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV]).expanduser()
    return Path("~/.config/scalezero").expanduser()


def credentials_path(directory: Path) -> Path:
    return directory / "credentials"


def read_credentials(path: Path) -> Credentials | None:
    """The stored credentials, or None if the file does not exist."""
    try:
        doc = json.loads(path.read_text())
        return Credentials(str(doc["user"]), str(doc["password"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"credentials file {path} is unreadable ({e}); delete it to "
                          "generate new credentials") from None


def load_or_create(path: Path, env: dict[str, str]) -> Credentials:
    """Credentials from the environment, else the file, else new ones saved to the file."""
    if env.get(PASSWORD_ENV):
        return Credentials(env.get(USER_ENV) or "admin", env[PASSWORD_ENV])
    found = read_credentials(path)
    if found is not None:
        return found
    creds = Credentials(env.get(USER_ENV) or "admin", secrets.token_urlsafe(24))
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start: never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"user": creds.user, "password": creds.password}, f)
    return creds
