"""create_app builds the whole gateway app: every route family, errors through one handler."""

import asyncio

import aiohttp
from aiohttp import web

from fakes import FakeBackend, FakeClock
from scalezero.gateway.app import UpConfig, build_gateway, create_app
from scalezero.gateway.asyncq import AsyncConfig
from scalezero.gateway.auth import Credentials
from scalezero.gateway.core import GatewayConfig
from scalezero.gateway.delivery import DeliveryConfig


def serve(tmp_path, requests, events_token=""):
    """Start create_app's app on 127.0.0.1:0, send (method, path, body), return answers."""
    async def go():
        gateway = build_gateway(GatewayConfig(), backend=FakeBackend(), clock=FakeClock())
        config = UpConfig(async_queue=AsyncConfig(db_path=tmp_path / "async.db"),
                          events=DeliveryConfig(auth_token=events_token))
        runner = web.AppRunner(create_app(gateway, Credentials("admin", "pw"), config))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        out = []
        try:
            async with aiohttp.ClientSession() as s:
                for method, path, body in requests:
                    async with s.request(method, base + path, data=body) as r:
                        out.append((r.status, dict(r.headers), await r.json()))
        finally:
            await runner.cleanup()
        return out
    return asyncio.run(go())


def test_the_app_has_the_api_the_async_and_the_event_routes(tmp_path):
    answers = serve(tmp_path, [("GET", "/events/subscriptions", None),
                               ("POST", "/async-function/nope", b"{}"),
                               ("GET", "/system/functions", None)])
    assert [a[0] for a in answers] == [200, 404, 401]
    assert answers[0][2] == {"subscriptions": []}
    assert "nope" in answers[1][2]["error"]


def test_event_route_errors_leave_through_the_error_middleware(tmp_path):
    [(status, headers, doc)] = serve(tmp_path, [("POST", "/events/s3", b"{not json")])
    assert status == 400 and "not valid JSON" in doc["error"]
    assert headers["Content-Type"].startswith("application/json")
    [(denied, _, why)] = serve(tmp_path, [("POST", "/events/s3", b"{}")], events_token="t0ken")
    assert denied == 401 and "Bearer" in why["error"]
