"""Pass a WebSocket through: accept the client's upgrade, open one to the backend, relay.

The relay works message by message (aiohttp on both sides), not byte by byte:
text, binary and close frames pass as they are; each side answers its own pings.
The backend handshake carries the request's headers minus the hop-by-hop and
``Sec-WebSocket-*`` ones (aiohttp writes its own), plus ``extra_headers``; a
backend that refuses the upgrade gets its status passed back to the client.
"""

import asyncio
from typing import Mapping

import aiohttp
from aiohttp import web

from scalezero.errors import BadGateway
from scalezero.gateway.proxy import Unreachable, clean_headers, target_url


def is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def _pump(src, dst) -> None:
    async for msg in src:
        if msg.type == aiohttp.WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        else:  # CLOSE / ERROR end the loop on their own
            break
    await dst.close(code=src.close_code or aiohttp.WSCloseCode.OK)


async def relay(request: web.Request, session: aiohttp.ClientSession, base_url: str,
                extra_headers: Mapping[str, str]) -> web.StreamResponse:
    """Serve ``request`` (an upgrade) by relaying to the same path at ``base_url``."""
    protocols = tuple(p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip())
    headers = clean_headers((k, v) for k, v in request.headers.items() if not k.lower().startswith("sec-websocket-"))
    headers.update(extra_headers)
    url = target_url(base_url, request.raw_path.split("?", 1)[0], request.query_string)
    try:
        upstream = await session.ws_connect(url, headers=headers, protocols=protocols, max_msg_size=0)
    except aiohttp.WSServerHandshakeError as e:
        return web.Response(status=e.status, text=f"the backend refused the WebSocket upgrade: {e.message}")
    except aiohttp.ClientConnectorError as e:
        raise Unreachable(f"cannot connect to {base_url} for a WebSocket ({e})") from None
    except aiohttp.ClientError as e:
        raise BadGateway(f"cannot open a WebSocket to {base_url} ({type(e).__name__}: {e})") from None
    client = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (), max_msg_size=0)
    await client.prepare(request)
    tasks = [asyncio.create_task(_pump(upstream, client)), asyncio.create_task(_pump(client, upstream))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.close()
    return client
