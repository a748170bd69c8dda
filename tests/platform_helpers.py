"""Start the real local platform (``python -m scalezero up``) for tests.

``start_gateway(tmp_path, functions, *flags)`` writes a stack.yml, starts the
gateway on a free port with its own state dir, and returns a ``Platform`` with
the URL, the generated credentials and the process (stopped by PID by ``stop``).
"""

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from procs import REPO, read_log, start_listening, stop_process
from scalezero.procs import up_command

AUTOSCALE = REPO / "functions" / "autoscale"


@dataclass
class Platform:
    proc: object  # subprocess.Popen of `scalezero up`
    url: str  # http://127.0.0.1:PORT
    user: str
    password: str
    state_dir: Path

    @property
    def auth(self) -> str:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"

    def request(self, method: str, path: str, body: bytes | dict | None = None,
                auth: bool = True, headers: dict | None = None, timeout: float = 60):
        """(status, headers, body bytes) of one HTTP request to the gateway."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=dict(headers or {}))
        if auth:
            req.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, path: str):
        status, _, body = self.request("GET", path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def log(self) -> str:
        return read_log(self.proc)

    def stop(self) -> int:
        return stop_process(self.proc, timeout_s=30)


def stack_text(functions: dict[str, dict]) -> str:
    return yaml.safe_dump({"version": 1.0, "provider": {"name": "openfaas"},
                           "functions": functions})


def known_credentials(tmp_path: Path, password: str) -> None:
    """A user's credentials file (admin/``password``, 0600) in the state dir that
    ``start_gateway(tmp_path, ...)`` uses, so a test knows the password to look for."""
    creds = tmp_path / "state" / "credentials"
    creds.parent.mkdir(exist_ok=True)
    creds.write_text(json.dumps({"user": "admin", "password": password}))
    creds.chmod(0o600)


def start_gateway(tmp_path: Path, functions: dict[str, dict], *flags: str,
                  env: dict | None = None) -> Platform:
    """Run `scalezero up` on a free port for ``functions`` (stack.yml entries)."""
    stack = tmp_path / "stack.yml"
    stack.write_text(stack_text(functions))
    state = tmp_path / "state"
    proc, url = start_listening(up_command(stack, state, *flags), env, timeout_s=60)
    creds = json.loads((state / "credentials").read_text())
    return Platform(proc, url, creds["user"], creds["password"], state)
