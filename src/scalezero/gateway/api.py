"""HTTP routes: the OpenFaaS REST API and the invocation route, on aiohttp.

Shapes follow ``openfaas-gateway-spec.yml`` and faas-provider's Go types
(FunctionDeployment in, FunctionStatus out). Errors of every kind leave as JSON
``{"error": ...}`` through one middleware and the table in scalezero.errors.
"""

import asyncio
import json
import logging
import platform
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scalezero import errors
from scalezero.backends.environment import check_api_environment
from scalezero.errors import BadRequest, FunctionNotFound, ScalezeroError
from scalezero.gateway.auth import REALM, Credentials
from scalezero.gateway import logstream
from scalezero.backends.mixed import BACKEND_ANNOTATION
from scalezero.gateway.core import Gateway
from scalezero.gateway.secretsapi import SECRETS, check_secrets_exist
from scalezero.stack import DEFAULT_NAMESPACE, FunctionSpec, check_environment, check_name, \
    function_from, ignored_fields, load_stack

log = logging.getLogger(__name__)
VERSION = "0.1.0"
GATEWAY = web.AppKey("gateway", Gateway)
CREDENTIALS = web.AppKey("credentials", Credentials)
LOGS_STOPPING = web.AppKey("logs_stopping", asyncio.Event)  # set when the gateway stops


def json_error(err: ScalezeroError) -> web.Response:
    return web.json_response(errors.error_body(err), status=err.status,
                             headers=errors.error_headers(err))


@web.middleware
async def error_middleware(request: web.Request, handler):
    """The one place errors become responses."""
    try:
        return await handler(request)
    except ScalezeroError as e:
        return json_error(e)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return web.json_response({"error": f"{e.reason}: {request.method} {request.path}"},
                                 status=e.status, headers={k: v for k, v in e.headers.items()
                                                           if k.lower() == "allow"})
    except Exception:  # noqa: BLE001 - a bug must still answer, and be logged
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"error": "internal error in the gateway (see its log)"},
                                 status=500)


@web.middleware
async def auth_middleware(request: web.Request, handler):
    """Basic auth on /system/* only (OpenFaaS: functions, healthz, metrics are open)."""
    if request.path == "/system" or request.path.startswith("/system/"):
        if not request.app[CREDENTIALS].check(request.headers.get("Authorization")):
            return web.json_response(
                {"error": "invalid credentials: /system/* needs basic auth "
                          "(see the credentials file printed by scalezero up)"},
                status=401, headers={"WWW-Authenticate": REALM})
    return await handler(request)


def add_routes(app: web.Application) -> None:
    app.router.add_route("GET", "/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/system/info", info)
    app.router.add_get("/system/functions", list_functions)
    app.router.add_post("/system/functions", create_function)
    app.router.add_put("/system/functions", update_function)
    app.router.add_delete("/system/functions", delete_function)
    app.router.add_get("/system/function/{name}", function_status)
    app.router.add_post("/system/scale-function/{name}", scale_function)
    app.router.add_get("/system/namespaces", namespaces)
    app.router.add_get("/system/namespace/{namespace}", namespace_get)
    for method in ("POST", "PUT", "DELETE"):  # faas-cli namespace create/update/delete
        app.router.add_route(method, "/system/namespace/", namespace_change)
        app.router.add_route(method, "/system/namespace/{namespace}", namespace_change)
    app.router.add_get("/system/logs", logs)
    app[LOGS_STOPPING] = asyncio.Event()
    app.on_shutdown.append(_end_log_streams)
    app.router.add_route("*", "/function/{target}", invoke)
    app.router.add_route("*", "/function/{target}/{tail:.*}", invoke)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[GATEWAY].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def info(request: web.Request) -> web.Response:
    version = {"release": VERSION, "sha": "", "commit_message": ""}
    return web.json_response({
        "provider": {"provider": "scalezero", "orchestration": backend_name(request.app[GATEWAY]),
                     "version": version},
        "version": version, "arch": platform.machine()})


def backend_name(gw: Gateway, spec: FunctionSpec | None = None) -> str:
    """process, docker or knative: what runs functions (``spec``: what runs that one)."""
    if spec is not None and spec.annotations.get(BACKEND_ANNOTATION) == "docker":
        return "docker"
    name = getattr(gw.backend, "orchestration", None) or \
        type(gw.backend).__name__.removesuffix("Backend").lower()
    return name or "process"


async def namespaces(request: web.Request) -> web.Response:
    return web.json_response([DEFAULT_NAMESPACE])


async def namespace_get(request: web.Request) -> web.Response:
    """GET /system/namespace/{ns}: FunctionNamespace (faas-cli namespace get; not in the
    CE spec, which has only the list)."""
    _check_namespace(request.match_info["namespace"])
    return web.json_response({"name": DEFAULT_NAMESPACE, "labels": {}, "annotations": {}})


async def namespace_change(request: web.Request) -> web.Response:
    """POST/PUT/DELETE /system/namespace/: refused, saying why (one fixed namespace)."""
    raise BadRequest(f"namespaces cannot be created, changed or removed: this gateway serves "
                     f"the one namespace {DEFAULT_NAMESPACE} (as OpenFaaS CE does)")


def _check_namespace(ns: str | None) -> None:
    if ns and ns != DEFAULT_NAMESPACE:
        raise FunctionNotFound(f"namespace {ns} not found: this gateway serves "
                               f"{DEFAULT_NAMESPACE} only")


def target_name(target: str) -> str:
    """The function name of a route's ``{name}[.{namespace}]``; 404 for another namespace."""
    name, _, ns = target.rpartition(".") if "." in target else (target, "", "")
    _check_namespace(ns)
    return name


async def function_status(request: web.Request) -> web.Response:
    """GET /system/function/{name}: FunctionStatus."""
    _check_namespace(request.query.get("namespace"))
    return web.json_response(status_of(request.app[GATEWAY], request.match_info["name"]))


async def list_functions(request: web.Request) -> web.Response:
    _check_namespace(request.query.get("namespace"))
    gw = request.app[GATEWAY]
    return web.json_response([status_of(gw, name) for name in sorted(gw.functions)])


def status_of(gw: Gateway, name: str) -> dict:
    """FunctionStatus (faas-provider types/function_status.go) of one function."""
    rec = gw.record(name)
    s = rec.spec
    replicas, ready = gw.counts(name)
    out = {"name": s.name, "image": s.image, "namespace": s.namespace,
           "envVars": s.environment, "labels": s.labels, "annotations": s.annotations,
           "secrets": list(s.secrets), "invocationCount": rec.invocations,
           "replicas": replicas, "availableReplicas": ready, "createdAt": rec.created_at,
           # scalezero's: the most instances it may get, and why (0: unlimited)
           "maxReplicas": rec.cap.max_scale, "maxReplicasSource": rec.cap.source}
    failed = gw.start_error(name)
    if failed is not None:
        out["lastStartError"] = failed.as_json()  # scalezero's: why no instance gets ready
    if s.limits:
        out["limits"] = s.limits
    if s.requests:
        out["requests"] = s.requests
    # Echoed as deployed (faas-cli describe prints them), though the process backend
    # ignores all three: constraints as faas-netes reports a nodeSelector, key=value.
    if s.fprocess:
        out["envProcess"] = s.fprocess
    if s.constraints:
        out["constraints"] = [f"{k}={v}" for k, v in s.constraints.items()]
    if s.readonly_root_filesystem:
        out["readOnlyRootFilesystem"] = True
    return out


async def _json_body(request: web.Request) -> dict:
    try:
        doc = json.loads(await request.read() or b"null")
    except (ValueError, RecursionError) as e:  # RecursionError: nested deeper than ~1000 levels
        raise BadRequest(f"request body is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BadRequest("request body must be a JSON object")
    return doc


MAP_FIELDS = ("envVars", "labels", "annotations", "limits", "requests")  # objects in faas-provider


def spec_from_deployment(doc: dict, existing: FunctionSpec | None, functions_dir: Path,
                         known: dict[str, FunctionSpec] | None = None,
                         runs_images: bool = False,
                         allow_interpreter_env: bool = False) -> FunctionSpec:
    """A FunctionDeployment body into a FunctionSpec; where its code comes from is
    ``function_source`` (``known``: every function this gateway has had)."""
    name = doc.get("service")
    if not isinstance(name, str) or not name:
        raise BadRequest("service is required: the function name")
    check_name(name)  # DNS-1123, so the folders below can only be <dir>/<name>
    if not isinstance(doc.get("image"), str):
        raise BadRequest("image is required (a string)")
    if doc.get("namespace") not in (None, "", DEFAULT_NAMESPACE):
        # faas-netes CE: 400 "namespace must be: openfaas-fn" (found by schemathesis).
        raise BadRequest(f"namespace = {doc.get('namespace')!r}, must be {DEFAULT_NAMESPACE}")
    for key in MAP_FIELDS:
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            raise BadRequest(f"{key} must be an object of strings, got {type(doc[key]).__name__}")
    env = check_environment({str(k): str(v) for k, v in (doc.get("envVars") or {}).items()},
                            "envVars")
    check_api_environment(env, allow_interpreter_env)
    handler = existing.handler if existing else function_source(
        name, doc["image"], functions_dir, known or {}, runs_images)
    constraints = doc.get("constraints")
    raw = {"handler": str(handler), "image": doc["image"], "environment": doc.get("envVars"),
           "labels": doc.get("labels"), "annotations": doc.get("annotations"),
           "limits": doc.get("limits"), "requests": doc.get("requests"),
           "secrets": doc.get("secrets"), "namespace": DEFAULT_NAMESPACE,
           "constraints": list(constraints) if isinstance(constraints, list) else constraints,
           "readonly_root_filesystem": doc.get("readOnlyRootFilesystem") is True,
           "fprocess": doc.get("envProcess") if isinstance(doc.get("envProcess"), str) else ""}
    return function_from(name, raw, Path("/"))


def image_function(image: str) -> str:
    """The function an image names: its repository's last part (``ghcr.io/me/hello:1`` -> hello)."""
    repo = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return repo.split(":", 1)[0]


def function_source(name: str, image: str, functions_dir: Path,
                    known: dict[str, FunctionSpec], runs_images: bool) -> Path:
    """The folder a function not registered now runs from, or a 400 saying what would work.

    In order: the folder it had before in this gateway (so remove + deploy and
    ``--replace`` work), the stack function its image names (same image, or the image's
    name), ``functions/<name>/`` or ``<name>/`` (``faas-cli new``) beside the stack file.
    A backend that runs images (docker, knative) needs no folder at all.
    """
    stack_dir = functions_dir.parent
    by_image = [s for s in known.values() if s.image == image] or \
        [s for s in known.values() if s.name == image_function(image)]
    candidates = ([known[name].handler] if name in known else []) + \
        [s.handler for s in by_image] + [functions_dir / name, stack_dir / name]
    for folder in candidates:
        if (Path(folder) / "handler.py").is_file():
            return Path(folder).resolve()
    if runs_images:
        return (functions_dir / name).resolve()  # unused: the image is the code
    names = ", ".join(sorted(known)) or "none"
    raise BadRequest(
        f"cannot deploy {name} from image {image!r}: this gateway's backend runs folders, not "
        f"images, and none was found. Any of these works: put the function's handler.py in "
        f"{functions_dir / name}/ or {stack_dir / name}/; deploy an image that names a "
        f"function of the loaded stack ({names}); or start the gateway with "
        f"SCALEZERO_BACKEND=docker (a Docker engine holding {image}) to run images")


def stack_now(path: Path | None) -> dict[str, FunctionSpec]:
    """The functions of the stack file as it is now: `faas-cli new --append` may have
    added one since `scalezero up` read it (with its own --handler folder). A file that
    does not load now (half edited) adds nothing, and says so in the log."""
    if path is None:
        return {}
    try:
        return dict(load_stack(path).functions)
    except ScalezeroError as e:
        log.warning("stack file %s not re-read for a deploy: %s", path, e)
        return {}


async def _deploy(request: web.Request, *, create: bool, update: bool) -> None:
    gw = request.app[GATEWAY]
    doc = await _json_body(request)
    existing = gw.functions.get(doc.get("service")) if isinstance(doc.get("service"), str) \
        else None
    if existing is None and not create:
        raise FunctionNotFound(f"function {doc.get('service')} is not deployed")
    # Knative (scales_itself) and docker run the image, as does a function annotated
    # scalezero.dev/backend: docker (backends/mixed.py); process backends run folders.
    annotations = doc.get("annotations") if isinstance(doc.get("annotations"), dict) else {}
    runs_images = bool(getattr(gw.backend, "runs_images", False) or gw.backend.scales_itself
                       or annotations.get(BACKEND_ANNOTATION) == "docker")
    known = gw.known if existing else {**stack_now(gw.config.stack_file), **gw.known}
    spec = spec_from_deployment(doc, existing.spec if existing else None,
                                gw.config.functions_dir, known, runs_images,
                                gw.config.allow_interpreter_env)
    check_secrets_exist(request.app[SECRETS], spec.secrets)
    await gw.deploy(spec, create=create, update=update)
    # faas-cli sends its template's fprocess with every deploy: not worth a warning.
    for warning in ignored_fields(spec, backend_name(gw, spec), fprocess=False):
        log.warning("deploy of %s: %s", spec.name, warning)


async def create_function(request: web.Request) -> web.Response:
    await _deploy(request, create=True, update=False)
    return web.Response(status=202)


async def update_function(request: web.Request) -> web.Response:
    await _deploy(request, create=False, update=True)
    return web.Response(status=200)


async def delete_function(request: web.Request) -> web.Response:
    doc = await _json_body(request)
    name = doc.get("functionName")
    if not isinstance(name, str) or not name:
        raise BadRequest("functionName is required")
    _check_namespace(doc.get("namespace"))
    await request.app[GATEWAY].remove(name)
    return web.Response(status=200)


async def scale_function(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    doc = await _json_body(request)
    replicas = doc.get("replicas")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise BadRequest(f"replicas = {replicas!r}, must be an integer >= 0")
    _check_namespace(doc.get("namespace") or request.query.get("namespace"))
    await request.app[GATEWAY].scale(name, replicas)
    return web.Response(status=202)


async def logs(request: web.Request) -> web.StreamResponse:
    """GET /system/logs?name=&tail=&since=&follow=&instance=: NDJSON LogEntry lines."""
    q = logstream.parse_query(request.query)
    _check_namespace(request.query.get("namespace"))
    gw = request.app[GATEWAY]
    ns = gw.record(q.name).spec.namespace
    if q.follow:
        return await logstream.follow(request, gw, q, ns, request.app[LOGS_STOPPING])
    lines = await logstream.read(gw.backend, q.name)
    body = b"".join(logstream.entry(ln, q.name, ns) for ln in logstream.history(lines, q))
    return web.Response(body=body, content_type="application/x-ndjson")


async def _end_log_streams(app: web.Application) -> None:
    """On shutdown: followed log streams end, so they do not hold the server's exit."""
    app[LOGS_STOPPING].set()


async def invoke(request: web.Request) -> web.Response:
    """Any method on /function/{name}[.{namespace}][/{path}]."""
    gw = request.app[GATEWAY]
    target = request.match_info["target"]
    name = target_name(target)
    prefix = f"/function/{target}"
    raw = request.rel_url.raw_path
    path = raw[len(prefix):] if raw.startswith(prefix) else "/"
    headers = list(request.headers.items())
    headers.append(("X-Forwarded-Host", request.host))
    headers.append(("X-Forwarded-For", request.remote or ""))
    status, out, body = await gw.invoke(name, request.method, path or "/", headers,
                                        await request.read(), request.rel_url.raw_query_string)
    if "Content-Type" not in out and "content-type" not in {k.lower() for k in out}:
        out["Content-Type"] = request.headers.get("Content-Type", "text/plain")
    return web.Response(status=status, headers=out, body=body)
