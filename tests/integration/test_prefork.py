"""A pre-forked instance is indistinguishable from a plain one to a client.

One PreforkBackend runs the same function folder twice: ``forked`` (from a
template) and ``plain`` (``scalezero.dev/prefork: "false"``, a fresh process).
Both get the same requests over real HTTP; their answers, readiness, limits,
metrics and logs must match. We also check that ``forked`` really is a child of
the template and ``plain`` a child of this process, or the comparison is void.
"""

import asyncio
import json
import os
import re
from pathlib import Path

import aiohttp
import pytest

from fixtures.yolo_support import BUS, DETECT_DIR, ensure_model
from procs import REPO
from scalezero.backends.base import READY, STARTING
from scalezero.backends.prefork import PREFORK, PreforkBackend
from scalezero.stack import function_from

SLOW = REPO / "tests" / "fixtures" / "functions" / "slow"
DEADLINE_S = 90


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def deploy_pair(backend: PreforkBackend, function_dir: Path, env: dict) -> None:
    for name, annotations in (("forked", {}), ("plain", {PREFORK: "false"})):
        raw = {"handler": str(function_dir), "environment": env, "annotations": annotations}
        await backend.deploy(function_from(name, raw, REPO))


async def wait_state(backend: PreforkBackend, name: str, states: tuple[str, ...], need_url=True):
    """The instance of ``name`` once it is in one of ``states`` (and has a URL)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while loop.time() < deadline:
        found = [i for i in backend.instances(name) if i.state in states and (i.url or not need_url)]
        if found:
            return found[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name}: no instance in {states} within {DEADLINE_S} s: "
                         f"{[line.text for line in backend.logs(name)]}")


async def wait_gone(backend: PreforkBackend, name: str) -> None:
    for _ in range(DEADLINE_S * 20):
        if not backend.instances(name):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} still has instances after {DEADLINE_S} s")


async def call(http, url, method="GET", body=None, params=None):
    async with http.request(method, url, data=body, params=params) as r:
        data = await r.read()
        is_json = r.headers.get("Content-Type", "").startswith("application/json")
        return r.status, dict(r.headers), json.loads(data) if is_json else data


def metric_families(text: bytes) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+) ", text.decode(), re.M))


def sample(text: bytes, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text.decode(), re.M)
    return float(m.group(1)) if m else 0.0


def check_lineage(backend: PreforkBackend) -> None:
    forked, plain = backend.instances("forked")[0], backend.instances("plain")[0]
    template = backend._templates["forked"].process.pid
    assert parent_of(forked.pid) == template != os.getpid()
    assert parent_of(plain.pid) == os.getpid()


def run(scenario, env: dict, function_dir: Path):
    async def main():
        backend = PreforkBackend()
        try:
            await deploy_pair(backend, function_dir, env)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
                return await scenario(backend, http)
        finally:
            await backend.close()
    return asyncio.run(main())


def test_yolo_detect_answers_the_same_forked_and_plain():
    ensure_model()

    async def scenario(backend, http):
        for name in ("forked", "plain"):
            await backend.scale(name, 1)
        urls = {n: (await wait_state(backend, n, (READY,))).url for n in ("forked", "plain")}
        check_lineage(backend)
        out = {}
        for name, url in urls.items():
            image = await call(http, url + "/", "POST", BUS.read_bytes(),
                               {"conf": "0.00001", "max_det": "5"})
            bad = await call(http, url + "/", "POST", b"not an image at all")
            ready = await call(http, url + "/_/ready")
            metrics = await call(http, url + "/metrics")
            out[name] = (image, bad, ready, metrics)
        return out

    out = run(scenario, {"max_inflight": "4"}, DETECT_DIR)
    (img_f, bad_f, ready_f, met_f), (img_p, bad_p, ready_p, met_p) = out["forked"], out["plain"]
    assert img_f[0] == img_p[0] == 200
    assert img_f[2].keys() == img_p[2].keys() and img_f[2]["count"] == img_p[2]["count"] == 5
    for det_f, det_p in zip(img_f[2]["detections"], img_p[2]["detections"]):
        assert det_f["class_id"] == det_p["class_id"]
        assert det_f["confidence"] == pytest.approx(det_p["confidence"], abs=1e-4)
        assert det_f["box"] == pytest.approx(det_p["box"], abs=0.05)
    assert (bad_f[0], bad_f[2]) == (bad_p[0], bad_p[2]) and bad_f[0] == 400
    assert ready_f[0] == ready_p[0] == 200
    assert metric_families(met_f[2]) == metric_families(met_p[2])
    code = 'http_requests_total{code="400",method="POST"}'
    assert sample(met_f[2], code) == sample(met_p[2], code) == 1


def test_readiness_limits_logs_and_drain_match():
    async def scenario(backend, http):
        out = {}
        for name in ("forked", "plain"):
            await backend.scale(name, 1)
            starting = await wait_state(backend, name, (STARTING,))
            early = (await call(http, starting.url + "/_/ready"))[0]  # handler still importing
            inst = await wait_state(backend, name, (READY,))
            url = inst.url
            assert (parent_of(inst.pid) == os.getpid()) == (name == "plain")
            slow = [call(http, url + "/x", "POST", b"", {"sleep_s": "1"}) for _ in range(2)]
            results = await asyncio.gather(*slow)
            inflight = asyncio.create_task(call(http, url + "/y", "GET", None, {"sleep_s": "0.5"}))
            await asyncio.sleep(0.2)
            await backend.scale(name, 0)  # drain: the in-flight request still finishes
            out[name] = (early, results, await inflight)
            await wait_gone(backend, name)
        check_logs(backend)
        return out

    env = {"max_inflight": "1", "IMPORT_SLEEP_S": "1.5"}
    out = run(scenario, env, SLOW)
    for name in ("forked", "plain"):
        early, results, drained = out[name]
        assert early == 503, name
        codes = sorted(r[0] for r in results)
        assert codes == [200, 429], (name, codes)
        refused = next(r for r in results if r[0] == 429)
        assert "Retry-After" in refused[1] and "error" in refused[2]
        assert drained[0] == 200 and drained[2]["path"] == "/y"
    ok_f = next(r for r in out["forked"][1] if r[0] == 200)[2]
    ok_p = next(r for r in out["plain"][1] if r[0] == 200)[2]
    assert {k: v for k, v in ok_f.items() if k != "pid"} == {k: v for k, v in ok_p.items() if k != "pid"}


def check_logs(backend: PreforkBackend) -> None:
    """Both instances' own log lines reach the backend: loaded, served, stopped."""
    for name in ("forked", "plain"):
        text = "\n".join(line.text for line in backend.logs(name) if line.instance != f"{name}-template")
        for expected in ("is ready", "POST /x 200", "POST /x 429", "stopped"):
            assert expected in text, (name, expected, text)
