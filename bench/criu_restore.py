"""CRIU restore of a warmed instance, against the start the platform uses instead.

Both paths give an instance whose handler is imported and whose model is loaded; the
figure is start -> first detection on bus.jpg (start, /_/ready, the first request), p50
of ``--runs`` each, interleaved, beside the private memory (USS) of the instance after
that request. No gateway: the start paths only. The baseline (``--function``):

- yolo-detect: the template (``preload.txt``'s ``@handler``: model loaded and warmed)
  forks an instance, as the pre-fork backend does for a cold start.
- yolo-ultralytics (the seed, PyTorch: never pre-forked): a plain process start.

The restore: an instance is started plainly, served ``--warm`` requests (its first
inference done: activations allocated), then ``criu dump``; each run is ``criu restore -d``
of that image. A restored process keeps its pid and its listening port, so one restore
at a time (a platform would need a network namespace per instance, or the socket handed
in with ``--inherit-fd``). CRIU checks the size of every file the process has open, so
its log and the SQLite file ONNX Runtime keeps open under ``$HOME`` are copied back as
they were at the dump before each restore, inside the timed span.

Needs a CRIU that passes ``criu check`` (``--criu PATH``; default ``criu`` on PATH).
Debian 12's 3.17 fails it on Linux 6.13 and later ("Unexpected rt vDSO area bounds":
the kernel's vvar_vclock mapping, handled from CRIU 4.1); the script then says so and
exits 2. Run as root. Not part of ``make bench``, since no CRIU that runs here can be
installed. Usage: ``sudo python bench/criu_restore.py --criu PATH [--function F] [--runs 10]``.
"""

import argparse
import asyncio
import ctypes
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

import cold_start
from benchlib import row, write_json
from scalezero.backends.template import Template, TemplateConfig
from scalezero.procs import stop_process

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = REPO / "functions"
BASELINES = {"yolo-detect": "fork of the warmed template", "yolo-ultralytics": "plain process start"}
PR_SET_CHILD_SUBREAPER = 36  # restored processes are reparented to us, so we can reap them


def environment() -> dict[str, str]:
    """cold_start's, with stack.yml's settings for yolo-detect: one ONNX Runtime thread, so
    the template can hold the warmed session."""
    return {**cold_start.environment(), "model_threads": "1", "warmup": "true", "max_inflight": "4"}


def detect(url: str, function: str) -> None:
    body, ctype = cold_start.FUNCTIONS[function]
    req = urllib.request.Request(url + "/", data=body(),
                                 headers={"Content-Type": ctype, "Connection": "close"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{function} answered {resp.status}")
        resp.read()


def until_ready(url: str, deadline_s: float = 30) -> None:
    cold_start.wait_until(lambda: cold_start.is_ready(url), time.monotonic() + deadline_s, f"ready {url}")


def uss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_full_info().uss / 2**20


def criu(binary: str, action: str, images: Path, *args: str) -> None:
    log = images / f"{action}.log"
    done = subprocess.run([binary, action, "-D", str(images), "-o", log.name, *args],
                          capture_output=True, text=True)
    if done.returncode != 0:
        errors = [line for line in log.read_text(errors="replace").splitlines() if "Error" in line]
        raise RuntimeError(f"criu {action} failed ({done.returncode}): " + "\n".join(errors[-10:]))


def start_plain(function: str, state: Path) -> tuple[subprocess.Popen, str]:
    """A plain instance whose $HOME and log are under ``state``, and its URL once it listens."""
    (state / "home").mkdir(parents=True)
    with open(state / "instance.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "scalezero.runtime.serve",
                                 str(FUNCTIONS / function), "--host", "127.0.0.1", "--port", "0"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**environment(), "HOME": str(state / "home")}, cwd=REPO,
                                start_new_session=True)
    try:
        url = cold_start.wait_until(lambda: cold_start.listening(proc, state / "instance.log"),
                                    time.monotonic() + 120, "LISTENING line")
    except BaseException:
        stop_process(proc, signal.SIGTERM, kill_timeout_s=5)
        raise
    return proc, url


def dump_warm_instance(binary: str, function: str, images: Path, warm: int) -> str:
    """A plain instance, warmed, dumped into ``images`` (which kills it); its URL."""
    state = images.parent / "state"  # its files: $HOME and its log
    proc, url = start_plain(function, state)
    try:
        until_ready(url, 120)
        for _ in range(warm):
            detect(url, function)
        time.sleep(0.2)  # the Connection: close sockets closed on the server's side too
        criu(binary, "dump", images, "-t", str(proc.pid), "--file-locks")
        proc.wait(timeout=10)
        shutil.copytree(state, images.parent / "state.dumped", symlinks=True)
        return url
    finally:
        stop_process(proc, signal.SIGTERM, kill_timeout_s=5)


def plain_once(function: str, work: Path) -> tuple[float, float, float]:
    state = work / "plain"
    shutil.rmtree(state, ignore_errors=True)
    t0 = time.perf_counter()
    proc, url = start_plain(function, state)
    try:
        until_ready(url, 120)
        ready = time.perf_counter() - t0
        detect(url, function)
        return ready, time.perf_counter() - t0, uss_mb(proc.pid)
    finally:
        stop_process(proc, signal.SIGTERM, kill_timeout_s=5)


def restore_once(binary: str, function: str, images: Path, url: str) -> tuple[float, float, float]:
    """(seconds to ready, seconds to the first detection, USS MB after it) of one restore."""
    pidfile = images / "restored.pid"
    pidfile.unlink(missing_ok=True)
    t0 = time.perf_counter()
    # Its open files as they were at the dump, whose sizes CRIU checks: its log, and a SQLite
    # file ONNX Runtime keeps open under $HOME (.cache/Microsoft/DeveloperTools). A platform
    # would snapshot the instance's filesystem with it; here a copy, timed with the restore.
    shutil.rmtree(images.parent / "state")
    shutil.copytree(images.parent / "state.dumped", images.parent / "state", symlinks=True)
    criu(binary, "restore", images, "-d", "--file-locks", "--pidfile", str(pidfile))
    pid = int(pidfile.read_text())
    try:
        until_ready(url)
        ready = time.perf_counter() - t0
        detect(url, function)
        first = time.perf_counter() - t0
        return ready, first, uss_mb(pid)
    finally:
        os.kill(pid, signal.SIGKILL)  # as the platform's scale-down ends a drained instance
        os.waitpid(pid, 0)  # our child: we are the subreaper; its pid is free again


async def fork_once(template: Template) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    child = await template.fork(environment())
    try:
        while not (line := (await child.stdout.readline()).decode()).startswith("LISTENING "):
            if not line:
                raise RuntimeError("the forked instance exited before LISTENING")
        url = line.split()[1]
        await asyncio.to_thread(until_ready, url)
        ready = time.perf_counter() - t0
        await asyncio.to_thread(detect, url, "yolo-detect")
        first = time.perf_counter() - t0
        return ready, first, uss_mb(child.pid)
    finally:
        child.kill()
        await child.wait()


async def measure(binary: str, function: str, runs: int, warm: int, work: Path) -> dict:
    images = work / "images"
    images.mkdir()
    url = dump_warm_instance(binary, function, images, warm)
    size_mb = sum(f.stat().st_size for f in images.iterdir()) / 2**20
    template = None
    if function == "yolo-detect":
        template = Template(str(FUNCTIONS / function), sys.executable, environment(),
                            TemplateConfig(), lambda text: None)
        await template.start()
    results = {"criu": [], "baseline": []}
    try:
        for i in range(runs):
            for path in (("criu", "baseline") if i % 2 == 0 else ("baseline", "criu")):
                if path == "criu":
                    got = await asyncio.to_thread(restore_once, binary, function, images, url)
                elif template is not None:
                    got = await fork_once(template)
                else:
                    got = await asyncio.to_thread(plain_once, function, work)
                results[path].append(got)
    finally:
        if template is not None:
            await template.stop()
    return {"images_mb": size_mb, **{k: [statistics.median(x) for x in zip(*v)] for k, v in results.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--criu", default="criu", help="the criu binary (default: criu on PATH)")
    parser.add_argument("--function", choices=BASELINES, default="yolo-detect",
                        help="yolo-detect (against a fork) or the seed, yolo-ultralytics (against a plain start)")
    parser.add_argument("--runs", type=int, default=10, help="starts per path (default 10, at least 5)")
    parser.add_argument("--warm", type=int, default=3, help="requests served before the dump (default 3)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error(f"runs = {args.runs}, must be >= 5")
    binary = shutil.which(args.criu)
    if binary is None:
        print(f"criu_restore: no {args.criu!r} (install Debian's criu, or pass --criu PATH)")
        return 2
    check = subprocess.run([binary, "check"], capture_output=True, text=True)
    if check.returncode != 0:
        lines = (check.stdout + check.stderr).strip().splitlines()
        print(f"criu_restore: `{binary} check` fails on this kernel ({os.uname().release}): {lines[0]}"
              "\n  (CRIU before 4.1 cannot handle the vvar_vclock mapping of Linux 6.13+)")
        return 2
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("criu_restore: cannot become a child subreaper")
        return 2
    os.chdir(REPO)
    with tempfile.TemporaryDirectory(prefix="criu-bench-") as work:
        m = asyncio.run(measure(binary, args.function, args.runs, args.warm, Path(work)))
    (c_ready, c_first, c_uss), (b_ready, b_first, b_uss) = m["criu"], m["baseline"]
    base = BASELINES[args.function]
    rows = [
        row("criu_restore", f"start -> first detection, {args.function} restored by CRIU (warmed)", c_first,
            "s", b_first, f"{base}, same run",
            detail=f"ready after {c_ready * 1000:.0f} ms ({base} {b_ready * 1000:.0f} ms); "
                   f"image {m['images_mb']:.0f} MB; medians of {args.runs}"),
        row("criu_restore", f"private memory (USS) after the first detection, {args.function} restored by CRIU",
            c_uss, "MB", b_uss, f"{base}, same run"),
    ]
    if args.json:
        write_json(args.json, rows)
    print(json.dumps(rows, indent=1))
    print(f"criu restore of {args.function}: first detection {c_first * 1000:.0f} ms after the restore "
          f"began (ready {c_ready * 1000:.0f} ms), {base} {b_first * 1000:.0f} ms (ready "
          f"{b_ready * 1000:.0f} ms): {c_first / b_first:.2f}x; USS {c_uss:.1f} MB against {b_uss:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
