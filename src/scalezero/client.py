"""faas-cli-style commands that talk HTTP to a gateway's OpenFaaS API.

``scalezero deploy -f stack.yml``, ``remove NAME``, ``list``, ``describe NAME``,
``invoke NAME`` (body from stdin), ``scale NAME --replicas N``, ``logs NAME``.
The gateway URL is ``--gateway``, else ``$OPENFAAS_URL``, else
http://127.0.0.1:8080; credentials are ``--user/--password``, else
``$SCALEZERO_USER/$SCALEZERO_PASSWORD``, else the file ``scalezero up`` wrote.
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from scalezero.errors import ScalezeroError
from scalezero.gateway import auth
from scalezero.stack import DEFAULT_NAMESPACE, STACK_FILE_HELP, load_stack

DEFAULT_GATEWAY = "http://127.0.0.1:8080"


class RequestFailed(ScalezeroError):
    """The gateway answered with an unexpected status."""


@dataclass(frozen=True)
class Client:
    """A tiny HTTP client for one gateway."""

    gateway: str  # base URL, no trailing slash
    credentials: auth.Credentials | None  # basic auth for /system/*, or None

    def call(self, method: str, path: str, body: bytes | dict | None = None,
             headers: dict | None = None, timeout: float = 60) -> tuple[int, dict, bytes]:
        """(status, headers, body); never raises for an HTTP status."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        req = urllib.request.Request(self.gateway + path, data=data, method=method,
                                     headers=dict(headers or {}))
        if isinstance(body, dict):
            req.add_header("Content-Type", "application/json")
        if self.credentials and path.startswith("/system/"):
            req.add_header("Authorization", self.credentials.header())
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ScalezeroError(f"cannot reach the gateway at {self.gateway} ({reason}); "
                                 "is `scalezero up` running?") from None

    def stream_lines(self, path: str):
        """The lines of a GET as they arrive (a followed log); RequestFailed on a non-200."""
        req = urllib.request.Request(self.gateway + path)
        if self.credentials:
            req.add_header("Authorization", self.credentials.header())
        try:
            with urllib.request.urlopen(req, timeout=None) as r:
                yield from (line for line in r if line.strip())
        except urllib.error.HTTPError as e:
            raise RequestFailed(f"GET {path}: server returned {e.code}: "
                                f"{e.read().decode(errors='replace').strip()}") from None
        except (urllib.error.URLError, OSError) as e:
            raise ScalezeroError(f"cannot reach the gateway at {self.gateway} "
                                 f"({getattr(e, 'reason', e)})") from None

    def expect(self, method: str, path: str, ok: tuple[int, ...], body=None) -> bytes:
        status, _, data = self.call(method, path, body)
        if status not in ok:
            hint = " (run `scalezero up` or pass --user/--password)" if status == 401 else ""
            raise RequestFailed(f"{method} {path}: server returned {status}: "
                                f"{data.decode(errors='replace').strip()}{hint}")
        return data


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("-g", "--gateway", default=None,
                        help=f"gateway URL (default $OPENFAAS_URL or {DEFAULT_GATEWAY})")
    parser.add_argument("--user", default=None, help="basic-auth user (default admin)")
    parser.add_argument("--password", default=None, help="basic-auth password")
    parser.add_argument("--state-dir", default=None, help="where `scalezero up` keeps credentials")
    if command == "deploy":
        parser.add_argument("-f", "--file", default=None, help=STACK_FILE_HELP)
    if command in ("remove", "describe", "invoke", "scale", "logs"):
        parser.add_argument("name", help="function name")
    if command == "invoke":
        parser.add_argument("-m", "--method", default="POST", help="HTTP method")
        parser.add_argument("-H", "--header", action="append", default=[],
                            help="extra header 'Key: Value' (repeatable)")
        parser.add_argument("--content-type", default="text/plain")
        parser.add_argument("--query", action="append", default=[], help="k=v (repeatable)")
        parser.add_argument("-a", "--async", dest="is_async", action="store_true",
                            help="queue the call (/async-function) and return at once")
    if command == "scale":
        parser.add_argument("--replicas", type=int, required=True, help="instance count")
    if command == "logs":
        parser.add_argument("--tail", type=int, default=0, help="last N lines (0 = all kept)")
        parser.add_argument("--since", default="", help="only lines since an RFC 3339 time")
        parser.add_argument("-f", "--follow", action="store_true",
                            help="keep printing new lines until interrupted")
    parser.set_defaults(_client_command=command)


def client_from(args: argparse.Namespace, stack_gateway: str | None = None) -> Client:
    env = dict(os.environ)
    url = args.gateway or stack_gateway or env.get("OPENFAAS_URL") or DEFAULT_GATEWAY
    url = url if "://" in url else "http://" + url
    user = args.user or env.get(auth.USER_ENV) or "admin"
    password = args.password or env.get(auth.PASSWORD_ENV)
    if password:
        creds = auth.Credentials(user, password)
    else:
        creds = auth.read_credentials(auth.credentials_path(auth.state_dir(args.state_dir, env)))
    return Client(url.rstrip("/").lower(), creds)


def main(args: argparse.Namespace) -> int:
    command = args._client_command
    if command == "deploy":
        return deploy(args)
    return COMMANDS[command](client_from(args), args)


def deploy(args: argparse.Namespace) -> int:
    """PUT each function; on 404 POST it (faas-cli's update-then-create)."""
    stack = load_stack(args.file)
    client = client_from(args, None if args.gateway else stack.gateway)
    for spec in stack.functions.values():
        body = {"service": spec.name, "image": spec.image, "namespace": spec.namespace,
                "envVars": spec.environment, "labels": spec.labels,
                "annotations": spec.annotations, "secrets": list(spec.secrets),
                "limits": spec.limits or None, "requests": spec.requests or None,
                "constraints": [f"{k}={v}" for k, v in spec.constraints.items()],
                "readOnlyRootFilesystem": spec.readonly_root_filesystem,
                **({"envProcess": spec.fprocess} if spec.fprocess else {})}
        status, _, data = client.call("PUT", "/system/functions", body)
        if status == 404:
            status, _, data = client.call("POST", "/system/functions", body)
        if status not in (200, 201, 202):
            raise RequestFailed(f"deploying {spec.name}: server returned {status}: "
                                f"{data.decode(errors='replace').strip()}")
        print(f"Deployed. {status}.\nURL: {client.gateway}/function/{spec.name}")
    return 0


def remove(client: Client, args) -> int:
    client.expect("DELETE", "/system/functions", (200, 202), {"functionName": args.name})
    print(f"Removed {args.name}.")
    return 0


def list_functions(client: Client, args) -> int:
    functions = json.loads(client.expect("GET", "/system/functions", (200,)))
    print(f"{'Function':<30} {'Invocations':>12} {'Replicas':>9} {'Ready':>6}")
    for f in functions:
        print(f"{f['name']:<30} {int(f.get('invocationCount', 0)):>12} "
              f"{f.get('replicas', 0):>9} {f.get('availableReplicas', 0):>6}")
    return 0


def describe(client: Client, args) -> int:
    f = json.loads(client.expect("GET", f"/system/function/{_q(args.name)}?usage=1", (200,)))
    ready = f.get("availableReplicas", 0)
    rows = [("Name", f["name"]), ("Status", "Ready" if ready else "Not Ready"),
            ("Replicas", f.get("replicas", 0)), ("Available Replicas", ready),
            ("Max Replicas", f"{f.get('maxReplicas') or 'unlimited'} "
                             f"({f.get('maxReplicasSource', '')})"),
            ("Invocations", int(f.get("invocationCount", 0))), ("Image", f.get("image", "")),
            ("URL", f"{client.gateway}/function/{f['name']}")]
    rows += [(k.title(), f.get(k) or "") for k in ("labels", "annotations", "envVars", "limits")]
    failed = f.get("lastStartError")
    if failed:
        rows += [("Last Start Error", f"{failed['error']} ({failed['failures']} failed starts "
                                      f"in a row, last at {failed['at']}, instance "
                                      f"{failed['instance']}, exit code {failed['exitCode']})")]
    for key, value in rows:
        print(f"{key + ':':<20} {value}")
    return 0


def invoke(client: Client, args) -> int:
    body = sys.stdin.buffer.read()
    headers = {"Content-Type": args.content_type}
    for h in args.header:
        key, _, value = h.partition(":") if ":" in h else h.partition("=")
        headers[key.strip()] = value.strip()
    query = "&".join(args.query)
    path = f"/{'async-function' if args.is_async else 'function'}/{_q(args.name)}"
    status, _, data = client.call(args.method.upper(), path + (f"?{query}" if query else ""),
                                  body, headers, timeout=300)
    if not 200 <= status < 300:
        raise RequestFailed(f"server returned unexpected status code: {status} - "
                            f"{data.decode(errors='replace').strip()}")
    if args.is_async and status == 202:
        print("Function submitted asynchronously.", file=sys.stderr)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0


def scale(client: Client, args) -> int:
    client.expect("POST", f"/system/scale-function/{_q(args.name)}", (200, 202),
                  {"serviceName": args.name, "namespace": DEFAULT_NAMESPACE,
                   "replicas": args.replicas})
    print(f"Scaling {args.name} to {args.replicas} replica(s).")
    return 0


def logs(client: Client, args) -> int:
    query = urllib.parse.urlencode({"name": args.name, "tail": args.tail, "since": args.since,
                                    "follow": str(args.follow).lower()})
    for line in client.stream_lines(f"/system/logs?{query}"):
        entry = json.loads(line)
        print(f"{entry['timestamp']} {entry['instance']} {entry['text']}", flush=True)
    return 0


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


COMMANDS = {"remove": remove, "list": list_functions, "describe": describe, "invoke": invoke,
            "scale": scale, "logs": logs}
