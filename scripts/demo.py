"""``make demo``: yolo-detect scales 0 -> N -> 0 under synthetic traffic, observed.

Starts the local gateway (``scalezero up``) with a copy of stack.yml whose
yolo-detect windows are shortened so a whole cycle fits in a few minutes, and a
real Prometheus on 127.0.0.1 when the binary exists. Then: one detection of
bus.jpg from zero (a cold start), a wait until yolo-detect is back at zero, an
open-loop burst (``scalezero load``), and the report: the terminal timeline,
the summary and the PNG. Everything goes to runs/<timestamp>/; every process
the demo started is stopped by its PID at the end.
"""

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from importlib.util import find_spec
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from scalezero.loadgen import bodies, prometheus  # noqa: E402
from scalezero.loadgen.engine import EngineConfig  # noqa: E402
from scalezero.loadgen.records import format_summary  # noqa: E402
from scalezero.loadgen.report import make_report  # noqa: E402
from scalezero.loadgen.run import RunOptions, build_schedule, run_load  # noqa: E402
from scalezero.loadgen.sampler import parse_exposition, value  # noqa: E402
from scalezero.procs import start_up, stop_process  # noqa: E402

FN = "yolo-detect"
# Short windows for the demo only: Knative's 60 s window and 30 s grace would
# make the idle tail longer than the rest of the demo. max-scale bounds the
# panic during the cold start: without it the requests queued while the first
# instance starts ask for dozens of instances, more than a small machine runs.
# Target 1 with one ONNX Runtime thread per instance: on 2 cores, two single-thread
# instances serve a burst better than one two-thread instance, so the burst shows
# the scale-out (0 -> N -> 0) instead of one instance keeping up alone.
DEMO_ANNOTATIONS = {"autoscaling.knative.dev/window": "10s",
                    "scalezero.dev/scale-to-zero-grace-period": "6s",
                    "autoscaling.knative.dev/max-scale": "4",
                    "autoscaling.knative.dev/target": "1"}
DEMO_ENV = {"model_threads": "1"}
PROFILE = "spike:base=0,peak={peak},at=5,length={length}"


def step(n: int, text: str) -> None:
    print(f"\n[{n}/6] {text}", flush=True)


def demo_stack(run_dir: Path) -> Path:
    """stack.yml with yolo-detect alone, absolute handler, shortened windows."""
    doc = yaml.safe_load((REPO / "stack.yml").read_text())
    fn = doc["functions"][FN]
    fn["handler"] = str((REPO / fn.get("handler", f"functions/{FN}")).resolve())
    fn.setdefault("annotations", {}).update(DEMO_ANNOTATIONS)
    fn.setdefault("environment", {}).update(DEMO_ENV)
    doc["functions"] = {FN: fn}
    path = run_dir / "stack.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def start_gateway(stack: Path, run_dir: Path, started: list) -> str:
    """`scalezero up` on a free port; its URL once it prints LISTENING."""
    log = run_dir / "gateway.log"
    try:
        # this checkout's code, even when the venv's editable install points at another
        proc, url = start_up(stack, run_dir / "state", log, cwd=REPO,
                             env={"PYTHONPATH": str(REPO / "src")})
    except RuntimeError as e:
        sys.exit(f"scalezero up did not start ({str(e).splitlines()[0]}); see {log}")
    started.append(proc)
    return url


def ready_instances(gateway: str) -> float:
    with urllib.request.urlopen(gateway + "/metrics", timeout=5) as r:
        samples = parse_exposition(r.read().decode())
    return value(samples, "gateway_service_count", function_name=FN) or 0.0


def wait_for_zero(gateway: str, timeout_s: float = 90) -> float:
    start = time.monotonic()
    while ready_instances(gateway) > 0 and time.monotonic() - start < timeout_s:
        time.sleep(1)
    return time.monotonic() - start


def bus_jpg() -> Path:
    spec = find_spec("ultralytics")  # the package ships sample images; no import needed
    if spec is None or not spec.submodule_search_locations:
        sys.exit("ultralytics is not installed: run `make venv` first")
    return Path(spec.submodule_search_locations[0]) / "assets" / "bus.jpg"


def detect_once(gateway: str, image: Path) -> None:
    """One request from zero: print the detections and the cold start it waited on."""
    req = urllib.request.Request(f"{gateway}/function/{FN}", data=image.read_bytes(),
                                 headers={"Content-Type": "image/jpeg"}, method="POST")
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=120) as r:
        doc, cold = json.load(r), r.headers.get("X-Scalezero-Cold-Start")
    took = time.monotonic() - t0
    trained = doc["model"]["trained"]
    print(f"  {image.name}: {doc['count']} detections in {took * 1000:.0f} ms "
          f"(cold start: waited {cold or '0'} s for an instance); model {doc['model']['name']}, "
          f"{'trained' if trained else 'UNTRAINED weights (offline export): boxes are meaningless'}")
    for d in doc["detections"][:5]:
        print(f"    {d['name']:<14} {d['confidence']:.3f}  box {d['box']}")
    if not doc["detections"]:
        print("    (no box above conf 0.25, as expected from untrained weights; "
              "with internet, `make model` exports the trained COCO weights)")


def start_prometheus(gateway: str, run_dir: Path, started: list):
    if prometheus.binary() is None:
        print(f"  prometheus is not installed, so the report reads the load generator's own "
              f"/metrics samples; {prometheus.INSTALL_HINT}")
        return None
    prom = prometheus.LocalPrometheus(gateway.removeprefix("http://"), run_dir / "prometheus",
                                      prometheus.PrometheusFiles.in_checkout(REPO))
    started.append(prom)
    try:
        prom.start()
    except prometheus.ConfigError as e:  # e.g. a port taken: the samples still make a report
        print(f"  Prometheus did not start ({e}); the report uses the /metrics samples")
        return None
    print(f"  Prometheus {prom.url} scraping {gateway}/metrics every 1 s "
          f"(rules: charts/scalezero/rules/scalezero.rules.yml)")
    return prom


def run_burst(gateway: str, image: Path, run_dir: Path, peak: float, length: float) -> dict:
    profile = PROFILE.format(peak=peak, length=length)
    duration = 5 + length + 5
    print(f"  = scalezero load -g {gateway} -f {FN} -p {profile} -d {duration:g} "
          f"--body-file {image} --linger 120 --until-zero -o {run_dir / 'load'}")
    schedule, _ = build_schedule(profile, [FN], duration, None)
    config = EngineConfig(gateway=gateway, timeout_s=60)
    options = RunOptions(out_dir=run_dir / "load", linger_s=120, until_zero=True,
                         meta={"profile": profile})
    from scalezero.loadgen.progress import Progress
    return asyncio.run(run_load(config, schedule, bodies.from_path(image), options, duration,
                                Progress(len(schedule), duration)))


def show_prometheus_facts(prom, start: float) -> None:
    try:
        _prometheus_facts(prom, start)
    except (OSError, ValueError, prometheus.ConfigError) as e:  # a busy machine: say so, go on
        print(f"  (Prometheus did not answer: {e})")


def _prometheus_facts(prom, start: float) -> None:
    window = f"{int(time.time() - start) + 5}s"
    peak = prom.query(f'max_over_time(gateway_service_count{{function_name="{FN}"}}[{window}])')
    now = prom.query(f'gateway_service_count{{function_name="{FN}"}}')
    cold = prom.query(f'scalezero_cold_start_seconds_count{{function_name="{FN}"}}')
    get = lambda r: r[0]["value"][1] if r else "no data"  # noqa: E731
    print(f"  PromQL max_over_time(gateway_service_count[{window}]) = {get(peak)}, "
          f"gateway_service_count now = {get(now)}, scalezero_cold_start_seconds_count = {get(cold)}")


def stop_all(started: list) -> None:
    """Stop what the demo started, by PID, newest first: Prometheus, then the gateway
    (which stops its instances)."""
    for proc in reversed(started):
        if isinstance(proc, prometheus.LocalPrometheus):
            proc.stop()
        else:
            stop_process(proc, 30, kill_timeout_s=10)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peak", type=float, default=8.0, help="requests per second in the burst")
    p.add_argument("--length", type=float, default=20.0, help="seconds the burst lasts")
    p.add_argument("--keep", action="store_true",
                   help="leave the gateway and Prometheus running until Enter is pressed")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    if not (REPO / "models" / "yolo26n.onnx").exists():
        sys.exit("models/yolo26n.onnx is missing: run `make model` (make demo does it)")
    run_dir = REPO / "runs" / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    print(f"scalezero demo: {FN} from zero, a burst, back to zero. Files: {run_dir.relative_to(REPO)}/")
    started: list = []  # processes and the LocalPrometheus, registered as soon as they start
    try:
        scenario(args, run_dir, started)
    finally:
        if args.keep and started:
            input("\ngateway and Prometheus still running; press Enter to stop them ")
        stop_all(started)
        print("stopped everything the demo started (gateway, its instances, Prometheus)")
    return 0


def scenario(args, run_dir: Path, started: list) -> None:
    t0 = time.monotonic()
    step(1, f"start the gateway: scalezero up -f {run_dir.relative_to(REPO)}/stack.yml "
            f"({FN} at zero; for the demo: window 10s, scale-to-zero grace 6s, max-scale 4, "
            "target 1, one ONNX Runtime thread per instance)")
    gateway = start_gateway(demo_stack(run_dir), run_dir, started)
    print(f"  gateway {gateway}: {FN} has {ready_instances(gateway):.0f} ready instances")
    step(2, "start Prometheus")
    prom = start_prometheus(gateway, run_dir, started)
    step(3, f"detect objects in bus.jpg through the gateway ({FN} starts from zero)")
    detect_once(gateway, bus_jpg())
    step(4, f"wait for {FN} to scale back to zero")
    print(f"  back at 0 ready instances after {wait_for_zero(gateway):.0f} s idle")
    time.sleep(2)  # let Prometheus scrape the zero before the burst starts
    step(5, f"open-loop burst: idle 5 s, {args.peak:g} req/s for {args.length:g} s, "
            "idle until back at zero")
    load_start = time.time()
    summary = run_burst(gateway, bus_jpg(), run_dir, args.peak, args.length)
    print(format_summary(summary))
    step(6, "report: instances per 5 s" + (" (from Prometheus)" if prom else " (from /metrics samples)"))
    if prom:
        time.sleep(2)  # the last scrapes
        show_prometheus_facts(prom, load_start)
    try:
        text, png = make_report(run_dir / "load", prom.url if prom else None, run_dir / "timeline.png")
    except (OSError, prometheus.ConfigError) as e:
        print(f"  (Prometheus query failed: {e}; using the load generator's samples)")
        text, png = make_report(run_dir / "load", None, run_dir / "timeline.png")
    print(text)
    print(f"\nfiles in {run_dir.relative_to(REPO)}/: timeline.png (PNG timeline), load/records.csv, "
          f"load/summary.json, load/samples.jsonl, gateway.log"
          f"{', prometheus/' if prom else ''}\nPNG: {png}\ndemo took {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
