"""The open-loop sender: every request leaves at its scheduled time.

Each request is its own asyncio task, so a slow response (a function scaling
from zero) never delays the next send; a closed-loop client would slow down
exactly when instances are at zero and hide the cold start it should measure.
The only brake is ``max_outstanding``: a request due while that many are in
flight is dropped and recorded as dropped.
"""

import asyncio
import math
from dataclasses import dataclass

import aiohttp

from scalezero.loadgen.bodies import BodySource
from scalezero.loadgen.records import Record
from scalezero.loadgen.schedule import Arrival

COLD_HEADER = "X-Scalezero-Cold-Start"
TAG_HEADER = "X-Scalezero-Tag"  # the arrival's tag (camera id, trace row), for the function


@dataclass(frozen=True)
class EngineConfig:
    """How requests are sent."""

    gateway: str = "http://127.0.0.1:8080"  # gateway base URL
    method: str = "POST"  # HTTP method of every request
    path: str = ""  # appended after /function/<name>
    max_outstanding: int = 1000  # requests in flight at most; later ones are dropped
    timeout_s: float = 60.0  # per-request total timeout

    def url(self, function: str) -> str:
        return f"{self.gateway.rstrip('/')}/function/{function}{self.path}"


class Engine:
    """Sends a schedule; ``records`` fills in as responses arrive."""

    def __init__(self, config: EngineConfig, bodies: BodySource):
        self.config = config
        self.bodies = bodies
        self.records: list[Record] = []
        self.outstanding = 0

    async def run(self, session: aiohttp.ClientSession, schedule: list[Arrival]) -> list[Record]:
        """Send every arrival at its time; return once all responses are in."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = set()
        for arrival in schedule:
            delay = start + arrival.t - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            rec = Record(scheduled_s=arrival.t, sent_s=loop.time() - start,
                         function=arrival.function, tag=arrival.tag)
            self.records.append(rec)
            if self.outstanding >= self.config.max_outstanding:
                rec.dropped = True
                rec.error = f"dropped: {self.outstanding} requests outstanding (cap)"
            else:
                task = asyncio.create_task(self._send(session, rec, arrival))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        return self.records

    async def _send(self, session: aiohttp.ClientSession, rec: Record, arrival: Arrival) -> None:
        body = self.bodies.next(arrival.tag)
        headers = {"Content-Type": body.content_type}
        if arrival.tag:
            headers[TAG_HEADER] = arrival.tag
        self.outstanding += 1
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            async with session.request(self.config.method, self.config.url(arrival.function),
                                       data=body.data, headers=headers) as resp:
                await resp.read()
                rec.status = resp.status
                rec.cold_start_s = _seconds(resp.headers.get(COLD_HEADER))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            rec.error = f"{type(e).__name__}: {e}".strip()[:200]
        finally:
            rec.latency_s = loop.time() - t0
            self.outstanding -= 1


def _seconds(header: str | None) -> float:
    try:
        return float(header) if header is not None else math.nan
    except ValueError:
        return math.nan


def new_session(config: EngineConfig) -> aiohttp.ClientSession:
    """A session with no connection limit (open loop) and the request timeout."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False),
        timeout=aiohttp.ClientTimeout(total=config.timeout_s))
