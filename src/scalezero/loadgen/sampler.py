"""Scrape the gateway's ``/metrics`` every second into a JSON-lines samples file.

This is what ``scalezero report`` reads when no Prometheus server ran: one line
per scrape, ``{"t": unix_time, "s": [[name, {labels}, value], ...]}``, keeping
only the scaling families (gateway_*, autoscaler_*, scalezero_*).
"""

import asyncio
import json
import time
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

KEEP = ("gateway_", "autoscaler_", "scalezero_")


def parse_exposition(text: str) -> list[list]:
    """Samples of the kept families from Prometheus exposition text."""
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith(KEEP):
                out.append([s.name, dict(s.labels), s.value])
    return out


def value(samples: list[list], name: str, **labels) -> float | None:
    """Sum of the samples named ``name`` whose labels include ``labels``; None if none."""
    hits = [v for n, lab, v in samples
            if n == name and all(lab.get(k) == want for k, want in labels.items())]
    return sum(hits) if hits else None


class Sampler:
    """Scrapes ``url`` every ``interval_s`` into ``path`` until stopped."""

    def __init__(self, url: str, path: Path, interval_s: float = 1.0):
        self.url, self.path, self.interval_s = url, path, interval_s
        self.latest: list[list] = []  # samples of the last good scrape
        self.scrapes = 0
        self.failures = 0

    async def run(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        """Scrape on a fixed grid (not drifting with scrape time) until ``stop`` is set."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        with open(self.path, "a") as out:
            while not stop.is_set():
                await self._scrape(session, out)
                next_at += self.interval_s
                try:
                    await asyncio.wait_for(stop.wait(), max(0.0, next_at - loop.time()))
                except asyncio.TimeoutError:
                    pass
            await self._scrape(session, out)  # the final state, after the last response

    async def _scrape(self, session: aiohttp.ClientSession, out) -> None:
        try:
            async with session.get(self.url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            self.failures += 1  # the gateway may be busy; a gap in the timeline says so
            return
        self.latest = parse_exposition(text)
        self.scrapes += 1
        out.write(json.dumps({"t": round(time.time(), 3), "s": self.latest}) + "\n")
        out.flush()

    def ready(self, function: str) -> float | None:
        """Ready instances of ``function`` in the last scrape."""
        return value(self.latest, "gateway_service_count", function_name=function)


def read_samples(path: Path) -> list[tuple[float, list[list]]]:
    """(unix time, samples) per scrape, from a samples file."""
    out = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            doc = json.loads(line)
            out.append((doc["t"], doc["s"]))
    return out
