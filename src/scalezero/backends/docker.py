"""The docker backend: every instance is a container of the function's image.

Instances are ``docker run`` of ``spec.image`` from the local engine (never
pulled: ``--pull never``), published on a free 127.0.0.1 port and otherwise
run exactly as the process backend runs its subprocesses (backends/process.py):
the ``docker run`` client is the instance's process, its output (the
container's stdout and stderr) is the instance's log, readiness is polled over
HTTP, and scale-down drains and then sends SIGTERM, which the client passes to
the container (``--sig-proxy``), so the runtime drains and exits 0. After every
exit the container is removed by name (``docker rm -f``), so a client killed
with SIGKILL leaves nothing running.

Readiness: ``/_/ready`` (the scalezero runtime), or the image's own path from
the OpenFaaS annotation ``com.openfaas.ready.http.path`` (of-watchdog images:
``/_/health``). Secrets the function lists are mounted read-only at
/var/openfaas/secrets, as OpenFaaS does; ``readonly_root_filesystem`` becomes
``--read-only`` (with a tmpfs /tmp); memory and cpu limits ``--memory``/``--cpus``.
"""

import asyncio
import os
import shutil
import socket

from scalezero.backends.base import function_environment
from scalezero.backends.process import ProcessBackend, ProcessConfig, _Proc
from scalezero.backends.output import read_lines
from scalezero.errors import ConfigError
from scalezero.secrets import SECRETS_DIR
from scalezero.stack import FunctionSpec
from scalezero.units import parse_size

DOCKER_ENV = "SCALEZERO_DOCKER"  # the docker client to run (default /usr/bin/docker)
READY_ANNOTATION = "com.openfaas.ready.http.path"
PORT = 8080  # the port every OpenFaaS and scalezero image listens on
LABEL = "dev.scalezero.instance"


def docker_client(env: dict[str, str]) -> str:
    """$SCALEZERO_DOCKER, else Debian's /usr/bin/docker, else the first docker on PATH."""
    if env.get(DOCKER_ENV):
        return env[DOCKER_ENV]
    if os.path.exists("/usr/bin/docker"):
        return "/usr/bin/docker"
    return shutil.which("docker") or "docker"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def limit_flags(spec: FunctionSpec) -> list[str]:
    """stack.yml limits as docker flags (memory in bytes; cpu "500m" -> 0.5)."""
    flags = []
    memory, cpu = spec.limits.get("memory"), spec.limits.get("cpu")
    try:
        if memory:
            flags += ["--memory", str(parse_size(memory))]
        if cpu:
            cpus = float(cpu[:-1]) / 1000 if str(cpu).endswith("m") else float(cpu)
            flags += ["--cpus", f"{cpus:g}"]
    except ValueError as e:
        raise ConfigError(f"functions.{spec.name}.limits: {e}") from None
    return flags


def run_command(docker: str, spec: FunctionSpec, container: str, port: int,
                secrets_dir: str | None) -> list[str]:
    """The ``docker run`` argv of one instance."""
    cmd = [docker, "run", "--rm", "--pull", "never", "--sig-proxy=true", "--name", container,
           "--label", f"{LABEL}={container}", "-p", f"127.0.0.1:{port}:{PORT}"]
    for key, value in sorted(function_environment(spec).items()):
        cmd += ["-e", f"{key}={value}"]
    if secrets_dir:
        cmd += ["-v", f"{secrets_dir}:{SECRETS_DIR}:ro"]
    if spec.readonly_root_filesystem:
        cmd += ["--read-only", "--tmpfs", "/tmp"]
    return cmd + limit_flags(spec) + [spec.image]


class DockerBackend(ProcessBackend):
    """Runs instances as containers of the function images on the local Docker engine."""

    runs_images = True  # a deploy needs an image, no folder (gateway/api.py)

    def __init__(self, config: ProcessConfig | None = None, docker: str | None = None):
        super().__init__(config)
        self.docker = docker or docker_client(dict(os.environ))
        self._prefix = f"scalezero-{os.getpid()}-"  # container names of this gateway

    async def _prepare(self, spec: FunctionSpec) -> None:
        """The image must exist in the local engine: a 400 that says how to get it."""
        if not spec.image:
            raise ConfigError(f"functions.{spec.name}.image is empty: the docker backend "
                              "runs images")
        code, out = await self._docker("image", "inspect", "--format", "{{.Id}}", spec.image)
        if code != 0:
            raise ConfigError(
                f"image {spec.image} is not in the local Docker engine ({out.strip()[:300]}): "
                f"build it first (faas-cli build, or docker build -t {spec.image} ...); "
                "the docker backend never pulls")

    def ready_path(self, spec: FunctionSpec) -> str:
        return spec.annotations.get(READY_ANNOTATION) or "/_/ready"

    async def _launch(self, p: _Proc) -> None:
        port = free_port()
        folder = self.secrets.folder(p.spec.secrets, p.inst.id, shared=True)
        cmd = run_command(self.docker, p.spec, self._container(p), port,
                          str(folder) if folder else None)
        p.process = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        p.inst.pid = p.process.pid
        p.inst.url = f"http://127.0.0.1:{port}"
        p.lines = read_lines(p.process.stdout)
        p.pump = asyncio.create_task(self._pump_logs(p))

    async def _exited(self, p: _Proc) -> None:
        # The client may be gone (SIGKILL) with the container still running: remove it.
        await self._docker("rm", "-f", self._container(p))
        code = p.process.returncode if p.process else None
        self._log(p, f"[scalezero] container {self._container(p)} exited (code {code})")
        await super()._exited(p)

    async def close(self) -> None:
        await super().close()
        code, out = await self._docker("ps", "-aq", "--filter", f"name={self._prefix}")
        if code == 0 and out.split():
            await self._docker("rm", "-f", *out.split())

    def _container(self, p: _Proc) -> str:
        return self._prefix + p.inst.id

    async def _docker(self, *args: str) -> tuple[int, str]:
        """Run one docker client command; (exit code, its output). Never raises."""
        try:
            proc = await asyncio.create_subprocess_exec(
                self.docker, *args, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        except OSError as e:
            return 127, f"cannot run {self.docker}: {e.strerror}"
        out, _ = await proc.communicate()
        return proc.returncode, out.decode(errors="replace")
