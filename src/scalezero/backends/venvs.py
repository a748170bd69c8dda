"""A function's requirements.txt on the process backend: its own virtual environment.

At deploy (and so at ``scalezero up``) the function's ``requirements.txt`` is
checked against the runtime's interpreter. When the runtime already satisfies
every line (the repository's functions, in the project venv), instances use the
runtime's Python and nothing is built. Otherwise the function gets a virtual
environment layered on the runtime's: ``python -m venv --without-pip``, a
``.pth`` file that adds the runtime's site-packages after the venv's own (so
scalezero, Flask and the rest come from the runtime, and a package the
function pins shadows the runtime's copy), then the runtime's pip installs the
requirements into it (``pip --python``; pip sees the layered packages as
installed and adds only what is missing). Environments are cached under
``<cache dir>/<hash>``, the hash of the interpreter and the requirements text,
so a second deploy or ``up`` reuses it; pip's output is streamed as progress,
and a failure raises ConfigError naming the requirement pip could not install.
"""

import asyncio
import hashlib
import json
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from scalezero.errors import ConfigError

log = logging.getLogger(__name__)
COMPLETE = ".scalezero-complete"  # written last: a folder without it is a failed build
NESTED = ("-r", "--requirement", "-e", "--editable", "-c", "--constraint")

# Run by the runtime's interpreter: which requirement lines it does not satisfy.
_CHECK = r"""
import json, sys
from importlib import metadata
from packaging.requirements import InvalidRequirement, Requirement
missing = []
for line in sys.argv[1:]:
    try:
        req = Requirement(line)
    except InvalidRequirement:
        missing.append(line)  # a path, a URL, an option: only pip can tell
        continue
    if req.marker is not None and not req.marker.evaluate():
        continue
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        missing.append(line)
        continue
    if req.url or not req.specifier.contains(version, prereleases=True):
        missing.append(line)
print(json.dumps(missing))
"""

# Run by the runtime's interpreter: the site-packages folders the venv layers over.
_SITE = "import json, site; print(json.dumps(site.getsitepackages()))"


@dataclass(frozen=True)
class VenvConfig:
    """Where function environments are cached and how long a build may take."""

    cache_dir: Path = Path("~/.cache/scalezero/venvs")  # one folder per requirements hash
    build_timeout_s: float = 900.0  # venv + pip install, longest

    def __post_init__(self):
        if self.build_timeout_s <= 0:
            raise ConfigError(f"build_timeout_s = {self.build_timeout_s}, must be > 0")


def requirement_lines(path: Path) -> list[str]:
    """The lines of a requirements file that name something (comments and blanks dropped)."""
    if not path.is_file():
        return []
    lines = (line.split(" #", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class FunctionEnvs:
    """Builds and caches function environments; one build per hash at a time."""

    def __init__(self, config: VenvConfig, python: str,
                 progress: Callable[[str, str], None] = lambda name, text: None):
        self.config = config
        self.python = python  # the runtime's interpreter
        self.progress = progress  # (function name, one line of progress)
        self._locks: dict[str, asyncio.Lock] = {}

    async def python_for(self, name: str, function_dir: Path) -> str:
        """The interpreter ``name``'s instances run: the runtime's, or its own venv's."""
        req = Path(function_dir).resolve() / "requirements.txt"
        lines = requirement_lines(req)
        if not lines:
            return self.python
        options = [line for line in lines if line.startswith("-")]
        missing = await self._unsatisfied([line for line in lines if not line.startswith("-")])
        # Nested files and editables name packages only pip can see.
        missing += [o for o in options if o.split()[0] in NESTED]
        if not missing:
            return self.python
        key = self._key(req.read_text())
        async with self._locks.setdefault(key, asyncio.Lock()):
            target = Path(self.config.cache_dir).expanduser().resolve() / key
            if not (target / COMPLETE).is_file():
                self.progress(name, f"[scalezero] building an environment for "
                                    f"{', '.join(missing)} ({target})")
                await self._build(name, req, target)
            else:
                self.progress(name, f"[scalezero] using the cached environment {target}")
        return str(target / "bin" / "python")

    def _key(self, text: str) -> str:
        seed = json.dumps([str(Path(self.python).resolve()), self.python, text])
        return hashlib.sha256(seed.encode()).hexdigest()[:16]

    async def _unsatisfied(self, lines: list[str]) -> list[str]:
        if not lines:
            return []
        code, out = await self._run([self.python, "-c", _CHECK, *lines], quiet=True)
        if code != 0:  # no packaging in the runtime: let pip decide
            return lines
        return json.loads(out[-1])

    async def _build(self, name: str, req: Path, target: Path) -> None:
        shutil.rmtree(target, ignore_errors=True)  # a build that died half-way
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            await self._checked(name, [self.python, "-m", "venv", "--without-pip", str(target)],
                                "creating the virtual environment")
            await self._layer(target)
            await self._checked(name, [self.python, "-m", "pip", "--python",
                                       str(target / "bin" / "python"), "install",
                                       "--disable-pip-version-check", "--no-input",
                                       "--progress-bar", "off", "-r", str(req)],
                                f"installing {req}", cwd=req.parent)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        (target / COMPLETE).write_text(req.read_text())
        self.progress(name, f"[scalezero] environment ready: {target}")

    async def _layer(self, target: Path) -> None:
        _, out = await self._run([self.python, "-c", _SITE], quiet=True)
        dirs = json.loads(out[-1])
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        found = list(target.glob("lib/python3*/site-packages"))
        own = found[0] if found else target / "lib" / version / "site-packages"
        # addsitedir (not a bare path) so the runtime's own .pth files run too (editables).
        lines = [f"import site; site.addsitedir({d!r})" for d in dirs]
        (own / "_scalezero_runtime.pth").write_text("\n".join(lines) + "\n")

    async def _checked(self, name: str, cmd: list[str], what: str, cwd: Path | None = None):
        code, out = await self._run(cmd, cwd=cwd, name=name)
        if code != 0:
            errors = [line for line in out if line.startswith("ERROR")] or out[-5:]
            said = "; ".join(e.removeprefix("ERROR: ") for e in errors)
            raise ConfigError(f"function {name}: {what} failed: {said} (the whole output is "
                              f"in the gateway log and scalezero logs {name})")

    async def _run(self, cmd: list[str], cwd: Path | None = None, quiet: bool = False,
                   name: str = "") -> tuple[int, list[str]]:
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        lines: list[str] = []
        try:
            async with asyncio.timeout(self.config.build_timeout_s):
                async for raw in proc.stdout:
                    text = raw.decode(errors="replace").rstrip()
                    lines.append(text)
                    if not quiet:
                        self.progress(name, f"[pip] {text}")
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise ConfigError(f"function {name}: {cmd[2]} did not finish in "
                              f"{self.config.build_timeout_s:g} s") from None
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise
        return proc.returncode, lines
