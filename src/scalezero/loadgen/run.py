"""``scalezero load``: open-loop synthetic traffic against a gateway, with records.

Writes into the run folder (default ``runs/<timestamp>/``): ``records.csv`` (one
row per scheduled request), ``summary.json``, ``samples.jsonl`` (the gateway's
/metrics every second, for ``scalezero report`` without Prometheus) and
``run.json`` (what was run, and when).
"""

import argparse
import asyncio
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scalezero.errors import ConfigError
from scalezero.loadgen import bodies as bodies_mod
from scalezero.loadgen.engine import Engine, EngineConfig, new_session
from scalezero.loadgen.profile import parse_profile
from scalezero.loadgen.progress import Progress
from scalezero.loadgen.records import format_summary, summarize, write_csv
from scalezero.loadgen.sampler import Sampler
from scalezero.loadgen.schedule import Arrival


@dataclass(frozen=True)
class RunOptions:
    """What happens around the requests."""

    out_dir: Path  # where records, summary and samples go
    sample_metrics: bool = True  # scrape the gateway's /metrics every second
    linger_s: float = 0.0  # keep sampling this long after the last response
    until_zero: bool = False  # stop lingering once every function has 0 ready instances
    meta: dict = field(default_factory=dict)  # extra facts for run.json (profile, argv)

    def __post_init__(self):
        if self.linger_s < 0:
            raise ConfigError(f"linger = {self.linger_s}, must be >= 0")


def build_schedule(profile_spec: str, functions: list[str], duration_s: float | None,
                   max_requests: int | None) -> tuple[list[Arrival], float]:
    """The arrivals (bounded by duration and request count) and the duration used."""
    if not functions:
        raise ConfigError("no function given: use -f NAME (repeatable)")
    profile = parse_profile(profile_spec)
    if duration_s is None:
        duration_s = getattr(profile, "natural_duration_s", 60.0)
    if duration_s <= 0:
        raise ConfigError(f"duration = {duration_s}, must be > 0")
    schedule = profile.schedule(functions, duration_s)
    if max_requests is not None:
        if max_requests < 0:
            raise ConfigError(f"requests = {max_requests}, must be >= 0")
        schedule = schedule[:max_requests]
    return schedule, duration_s


async def run_load(config: EngineConfig, schedule: list[Arrival], bodies,
                   options: RunOptions, duration_s: float, progress: Progress | None = None) -> dict:
    """Send the schedule, sample metrics, write the run folder; return the summary."""
    out = options.out_dir
    out.mkdir(parents=True, exist_ok=True)
    engine = Engine(config, bodies)
    functions = sorted({a.function for a in schedule})
    started = time.time()
    _write_json(out / "run.json", {**options.meta, "gateway": config.gateway, "functions": functions,
                                   "scheduled": len(schedule), "duration_s": duration_s,
                                   "start_unix": started, "engine": asdict(config)})
    async with new_session(config) as session:
        stop = asyncio.Event()
        sampler = Sampler(f"{config.gateway.rstrip('/')}/metrics", out / "samples.jsonl")
        sampling = asyncio.create_task(sampler.run(session, stop)) if options.sample_metrics else None
        ticker = asyncio.create_task(_tick(progress, engine, started))
        records = await engine.run(session, schedule)
        ended = time.time()
        ticker.cancel()
        await _linger(options, sampler, functions, progress, engine, started)
        stop.set()
        if sampling:
            await sampling
    if progress:
        progress.show(time.time() - started, engine.records, 0, force=True)
        progress.done()
    write_csv(records, out / "records.csv")
    summary = summarize(records, ended - started)
    summary["sampler"] = {"scrapes": sampler.scrapes, "failures": sampler.failures}
    _write_json(out / "summary.json", summary)
    _write_json(out / "run.json", {**json.loads((out / "run.json").read_text()),
                                   "end_unix": time.time(), "last_response_unix": ended})
    return summary


async def _tick(progress, engine, started) -> None:
    while progress:
        progress.show(time.time() - started, engine.records, engine.outstanding)
        await asyncio.sleep(0.2)


async def _linger(options, sampler, functions, progress, engine, started) -> None:
    """Keep sampling after the traffic, e.g. until the functions are back at zero."""
    deadline = time.monotonic() + options.linger_s
    while time.monotonic() < deadline:
        ready = [sampler.ready(f) for f in functions]
        if options.until_zero and sampler.scrapes and all(r == 0 for r in ready):
            return
        if progress:
            note = "waiting for scale-down: ready " + ", ".join(
                f"{f}={'?' if r is None else int(r)}" for f, r in zip(functions, ready))
            progress.show(time.time() - started, engine.records, 0, note=note)
        await asyncio.sleep(0.5)


def _write_json(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(_finite(doc), indent=2, default=str) + "\n")


def _finite(v):
    """NaN -> null, so the JSON is standard."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    return [_finite(x) for x in v] if isinstance(v, list) else v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--function", action="append", default=[], metavar="NAME",
                   help="function to invoke (repeatable; rates are per function)")
    p.add_argument("-p", "--profile", default="constant:rate=1",
                   help="NAME:key=value,... e.g. spike:base=0,peak=20,at=5,length=5; names: "
                        "constant, step, ramp, spike, sine, poisson, trace (see docs)")
    p.add_argument("-g", "--gateway", default="http://127.0.0.1:8080", help="gateway base URL")
    p.add_argument("-d", "--duration", type=float, default=None,
                   help="seconds of traffic (default: the profile's own length, else 60)")
    p.add_argument("-n", "--requests", type=int, default=None, help="send at most this many")
    p.add_argument("--max-outstanding", type=int, default=1000,
                   help="cap on requests in flight; requests due over it are dropped and counted")
    p.add_argument("--timeout", type=float, default=60.0, help="per-request timeout, seconds")
    p.add_argument("--method", default="POST")
    p.add_argument("--path", default="", help="appended to /function/NAME")
    body = p.add_mutually_exclusive_group()
    body.add_argument("--body-file", metavar="PATH", help="a file, or a folder cycled through")
    body.add_argument("--body-size", type=int, metavar="BYTES", help="generated random bodies")
    body.add_argument("--body", metavar="TEXT", help="a literal body")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="run folder (default runs/<timestamp>)")
    p.add_argument("--no-metrics", action="store_true", help="do not sample the gateway /metrics")
    p.add_argument("--linger", type=float, default=0.0,
                   help="keep sampling metrics this many seconds after the last response")
    p.add_argument("--until-zero", action="store_true",
                   help="stop lingering once every function is back at 0 ready instances")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")


def bodies_from(args) -> bodies_mod.BodySource:
    """The body source the flags ask for (default: an empty body)."""
    if args.body_file:
        return bodies_mod.from_path(args.body_file)
    if args.body_size is not None:
        return bodies_mod.generated(args.body_size)
    return bodies_mod.from_text(args.body or "")


def default_out_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def main(args) -> int:
    if args.max_outstanding < 1:
        raise ConfigError(f"max_outstanding = {args.max_outstanding}, must be >= 1")
    schedule, duration = build_schedule(args.profile, args.function, args.duration, args.requests)
    config = EngineConfig(gateway=args.gateway, method=args.method.upper(), path=args.path,
                          max_outstanding=args.max_outstanding, timeout_s=args.timeout)
    options = RunOptions(out_dir=args.out or default_out_dir(), sample_metrics=not args.no_metrics,
                         linger_s=args.linger, until_zero=args.until_zero,
                         meta={"profile": args.profile})
    progress = None if args.quiet else Progress(len(schedule), duration)
    summary = asyncio.run(run_load(config, schedule, bodies_from(args), options, duration, progress))
    print(format_summary(summary))
    print(f"records  {options.out_dir / 'records.csv'}\nsummary  {options.out_dir / 'summary.json'}")
    return 0
