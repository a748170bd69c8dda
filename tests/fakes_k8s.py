"""A stateful fake of the Kubernetes API endpoints the knative backend uses.

A real HTTP server (``http.server`` on 127.0.0.1, port 0) that stores the
objects clients create and lists them back, so the real ``kubernetes`` client
talks to it unchanged. It keeps resourceVersion, uid, generation and
creationTimestamp as the API server does, answers 404/409 with ``Status``
objects, filters lists by ``labelSelector`` and applies JSON merge patches.
It does not reconcile anything: a test plays the Knative controller by writing
a Service's status and creating its pods through the same HTTP API.

Handled paths (any group, version, resource):
  /api/v1/namespaces/NS/RESOURCE[/NAME]
  /apis/GROUP/VERSION/namespaces/NS/RESOURCE[/NAME[/status]]
  /api/v1/namespaces/NS/pods/NAME/log   (text a test put in ``pod_logs``)
  /api/v1/RESOURCE, /apis/GROUP/VERSION/RESOURCE   (list across every namespace)
"""

import copy
import datetime
import itertools
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+)/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?(?P<status>/status)?(?P<log>/log)?"
    r"|/(?P<all_resource>[^/]+))$"
)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (what ``kubectl patch --type merge`` sends)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def selector_matches(selector: str, labels: dict) -> bool:
    """Equality (``a=b``, ``a==b``, ``a!=b``) and existence (``a``, ``!a``) selectors."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            ok = labels.get(k.strip()) != v.strip()
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            ok = labels.get(k.strip()) == v.strip()
        elif term.startswith("!"):
            ok = term[1:] not in labels
        else:
            ok = term in labels
        if not ok:
            return False
    return True


SYSTEM_METADATA = ("name", "namespace", "uid", "generation", "creationTimestamp")


class FakeKubernetes:
    """The object store plus the HTTP server around it. Use as a context manager."""

    def __init__(self):
        self.objects: dict[tuple, dict] = {}  # (api, ns, resource, name) -> object
        self.requests: list[tuple[str, str]] = []  # (method, path), for failure messages
        # (ns, pod, container) -> the container's log as the kubelet keeps it, one
        # "RFC3339NANO text" line each (what ?timestamps=true answers)
        self.pod_logs: dict[tuple[str, str, str], str] = {}
        self.lock = threading.Lock()
        self._rv = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeKubernetes":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    # -- the API server's behaviour, called by the HTTP handler --------------------
    def create(self, key: tuple, body: dict) -> tuple[int, dict]:
        api, ns, resource, _ = key
        name = body.get("metadata", {}).get("name")
        if not name:
            return 422, _status(422, "Invalid", "metadata.name: Required value")
        full = (api, ns, resource, name)
        with self.lock:
            if full in self.objects:
                return 409, _status(409, "AlreadyExists", f'{resource} "{name}" already exists')
            obj = copy.deepcopy(body)
            meta = obj.setdefault("metadata", {})
            meta.update(namespace=ns, uid=str(uuid.uuid4()), generation=1,
                        creationTimestamp=_now(), resourceVersion=str(next(self._rv)))
            self.objects[full] = obj
            return 201, copy.deepcopy(obj)

    def get(self, key: tuple) -> tuple[int, dict]:
        with self.lock:
            obj = self.objects.get(key)
        if obj is None:
            return 404, _status(404, "NotFound", f'{key[2]} "{key[3]}" not found')
        return 200, copy.deepcopy(obj)

    def list_all(self, key: tuple, selector: str) -> tuple[int, dict]:
        api, ns, resource, _ = key  # ns None: every namespace
        with self.lock:
            items = [copy.deepcopy(o) for (a, n, r, _), o in sorted(self.objects.items())
                     if (a, r) == (api, resource) and ns in (None, n)
                     and selector_matches(selector, o["metadata"].get("labels") or {})]
            rv = str(next(self._rv))
        return 200, {"kind": "List", "apiVersion": "v1", "items": items,
                     "metadata": {"resourceVersion": rv}}

    def update(self, key: tuple, body: dict, status_only: bool) -> tuple[int, dict]:
        with self.lock:
            old = self.objects.get(key)
            if old is None:
                return 404, _status(404, "NotFound", f'{key[2]} "{key[3]}" not found')
            sent_rv = body.get("metadata", {}).get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                return 409, _status(409, "Conflict", "the object has been modified")
            return 200, self._store(key, old, body, status_only)

    def patch(self, key: tuple, patch: dict, status_only: bool) -> tuple[int, dict]:
        with self.lock:
            old = self.objects.get(key)
            if old is None:
                return 404, _status(404, "NotFound", f'{key[2]} "{key[3]}" not found')
            return 200, self._store(key, old, merge_patch(old, patch), status_only)

    def _store(self, key: tuple, old: dict, new: dict, status_only: bool) -> dict:
        """Write ``new``; the status subresource changes only status, the main one keeps it."""
        obj = copy.deepcopy(old)
        if status_only:
            obj["status"] = copy.deepcopy(new.get("status"))
        else:
            obj.update({k: copy.deepcopy(v) for k, v in new.items() if k != "status"})
            # A PUT replaces labels and annotations as sent (the API server keeps only
            # its own fields): a client that drops one loses it, as on a real cluster.
            system = {k: old["metadata"][k] for k in SYSTEM_METADATA if k in old["metadata"]}
            obj["metadata"] = {**new.get("metadata", {}), **system}
            if new.get("spec") != old.get("spec"):
                obj["metadata"]["generation"] = old["metadata"]["generation"] + 1
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def delete(self, key: tuple) -> tuple[int, dict]:
        with self.lock:
            obj = self.objects.pop(key, None)
        if obj is None:
            return 404, _status(404, "NotFound", f'{key[2]} "{key[3]}" not found')
        return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success",
                     "details": {"name": key[3], "kind": key[2]}}

    # -- helpers for tests that play the controller --------------------------------
    def pod_log(self, ns: str, pod: str, query: dict) -> tuple[int, str]:
        """GET .../pods/POD/log?container=&timestamps=&tailLines=, as the API server answers."""
        if ("v1", ns, "pods", pod) not in self.objects:
            return 404, f'pods "{pod}" not found'
        container = (query.get("container") or [""])[0]
        text = self.pod_logs.get((ns, pod, container))
        if text is None:
            return 400, f'container "{container}" in pod "{pod}" is waiting to start'
        lines = text.splitlines()
        if (query.get("timestamps") or ["false"])[0] != "true":
            lines = [ln.split(" ", 1)[1] if " " in ln else "" for ln in lines]
        tail = int((query.get("tailLines") or ["-1"])[0])
        if tail >= 0:
            lines = lines[len(lines) - tail:] if tail else []
        return 200, "".join(ln + "\n" for ln in lines)

    def stored(self, api: str, ns: str, resource: str) -> list[dict]:
        """Every stored object of one kind in one namespace."""
        with self.lock:
            return [copy.deepcopy(o) for (a, n, r, _), o in sorted(self.objects.items())
                    if (a, n, r) == (api, ns, resource)]


def _make_handler(fake: FakeKubernetes):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep pytest output clean
            pass

        def _route(self):
            parts = urlsplit(self.path)
            fake.requests.append((self.command, parts.path))
            m = _PATH.match(parts.path)
            if not m:
                return None, None, None
            api = "v1" if m["core"] else f"{m['group']}/{m['version']}"
            key = (api, m["ns"], m["resource"] or m["all_resource"], m["name"])
            if m["log"] and (api, m["resource"]) != ("v1", "pods"):
                return None, None, None
            return key, "log" if m["log"] else bool(m["status"]), parse_qs(parts.query)

        def _body(self):
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def _send(self, code: int, obj: dict):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _send_text(self, code: int, text: str):
            if code != 200:
                return self._send(code, _status(code, "BadRequest" if code == 400 else "NotFound", text))
            data = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _dispatch(self, method: str):
            key, status_only, query = self._route()
            if key is None:
                return self._send(404, _status(404, "NotFound", f"no route for {self.path}"))
            named = key[3] is not None
            if status_only == "log":
                if method != "GET" or not named:
                    return self._send(405, _status(405, "MethodNotAllowed", f"{method} {self.path}"))
                return self._send_text(*fake.pod_log(key[1], key[3], query))
            if key[1] is None and method != "GET":
                return self._send(405, _status(405, "MethodNotAllowed", f"{method} {self.path}"))
            if method == "GET":
                selector = (query.get("labelSelector") or [""])[0]
                return self._send(*(fake.get(key) if named else fake.list_all(key, selector)))
            if method == "POST" and not named:
                return self._send(*fake.create(key, self._body()))
            if method == "PUT" and named:
                return self._send(*fake.update(key, self._body(), status_only))
            if method == "PATCH" and named:
                return self._send(*fake.patch(key, self._body(), status_only))
            if method == "DELETE" and named:
                self._body()  # DeleteOptions: read it so the connection stays in step
                return self._send(*fake.delete(key))
            self._send(405, _status(405, "MethodNotAllowed", f"{method} {self.path}"))

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def do_PUT(self):
            self._dispatch("PUT")

        def do_PATCH(self):
            self._dispatch("PATCH")

        def do_DELETE(self):
            self._dispatch("DELETE")

    return Handler
