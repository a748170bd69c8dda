"""``/system/secrets``: the OpenFaaS secrets API (openfaas-gateway-spec.yml).

GET lists names only (``[{"name", "namespace"}]``, as faas-netes answers),
POST creates (201; 409 if it exists), PUT replaces the value (200; 404 if
missing), DELETE removes (202, as faas-netes answers: the spec's 204 makes
faas-cli 0.18 `secret remove` fail, it accepts only 200 and 202; 404). Bodies are faas-provider's ``Secret``:
``{name, namespace, value}`` or ``rawValue`` (base64). Values are written by
``scalezero.secrets.SecretStore`` and appear in no response and no log line.
"""

import json

from aiohttp import web

from scalezero.errors import BadRequest, FunctionNotFound
from scalezero.secrets import SecretStore, check_secret_name, value_from
from scalezero.stack import DEFAULT_NAMESPACE

SECRETS = web.AppKey("secrets", SecretStore)


def add_secret_routes(app: web.Application, store: SecretStore) -> None:
    app[SECRETS] = store
    app.router.add_get("/system/secrets", list_secrets)
    app.router.add_post("/system/secrets", create_secret)
    app.router.add_put("/system/secrets", update_secret)
    app.router.add_delete("/system/secrets", delete_secret)


def check_secrets_exist(store: SecretStore, names) -> None:
    """A deploy naming a secret that was never created is a 400 (faas-netes refuses it too)."""
    missing = [n for n in names if not store.exists(n)]
    if missing:
        raise BadRequest(f"secret {', '.join(missing)} not found: create it first "
                         f"(faas-cli secret create {missing[0]} --from-literal VALUE)")


async def _secret_body(request: web.Request) -> dict:
    try:
        doc = json.loads(await request.read() or b"null")
    except ValueError:
        # Never echo the body: it may hold the value.
        raise BadRequest("request body is not valid JSON (expected a Secret: "
                         '{"name": ..., "value": ...})') from None
    if not isinstance(doc, dict):
        raise BadRequest('request body must be a JSON object: {"name": ..., "value": ...}')
    check_secret_name(doc.get("name"))
    for key in ("namespace", "value", "rawValue"):
        if key in doc and not isinstance(doc[key], str):
            raise BadRequest(f"{key} must be a string")
    ns = doc.get("namespace")
    if ns not in (None, "", DEFAULT_NAMESPACE):
        raise BadRequest(f"namespace = {ns!r}, must be {DEFAULT_NAMESPACE}")
    return doc


async def list_secrets(request: web.Request) -> web.Response:
    ns = request.query.get("namespace")
    if ns not in (None, "", DEFAULT_NAMESPACE):
        raise FunctionNotFound(f"namespace {ns} not found: this gateway serves "
                               f"{DEFAULT_NAMESPACE} only")
    return web.json_response([{"name": n, "namespace": DEFAULT_NAMESPACE}
                              for n in request.app[SECRETS].names()])


async def create_secret(request: web.Request) -> web.Response:
    doc = await _secret_body(request)
    request.app[SECRETS].create(doc["name"], value_from(doc))
    return web.Response(status=201)


async def update_secret(request: web.Request) -> web.Response:
    doc = await _secret_body(request)
    request.app[SECRETS].update(doc["name"], value_from(doc))
    return web.Response(status=200)


async def delete_secret(request: web.Request) -> web.Response:
    doc = await _secret_body(request)
    request.app[SECRETS].delete(doc["name"])
    return web.Response(status=202)  # faas-netes; faas-cli's RemoveSecret: 200 or 202 only
