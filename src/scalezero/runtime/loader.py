"""Finding and importing a function's handler, and preloading its libraries.

``load_handler(function_dir)`` imports ``function_dir/handler.py`` (its model
loads here, once per instance) and returns a ``Handler``. The folder is imported
as the package ``function``, as the OpenFaaS templates do (``from function
import handler``), so ``from .helper import x`` works; the folder is also first
on ``sys.path``, so ``import helper`` works too. ``preload`` imports
only the libraries named in ``function_dir/preload.txt`` (one module per line,
``#`` comments): no per-instance state, so a template process can preload and
then fork instances that start warm (the "pre-fork" start path reuses this).
A ``@handler`` line in ``preload.txt`` asks a template to import and warm the
handler itself, before it forks (``wants_handler``): the instances then start with
the model loaded. Only for handlers that start no thread when imported (ONNX
Runtime with one intra-op thread); the template checks and falls back otherwise.
``HandlerSlot`` is where a background import hands the handler to the app, so
``/_/ready`` can answer 503 while the import runs.

The folder's own modules are compiled from their source at every import, never read
from ``__pycache__``: a ``.pyc`` is matched to its source by size and mtime in whole
seconds, so an edit of the same length within the same second (``'v1'`` to ``'v2'``,
then a redeploy) would run the old code.
"""

import importlib
import importlib.machinery
import importlib.util
import inspect
import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from scalezero.errors import ConfigError, NotReady

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handler:
    """An imported handler: ``kind`` is "handle" (python3-http), "classic"
    (python3 / python3-flask's ``handle(req)``) or "lambda" (AWS)."""

    kind: str
    func: Callable[[Any, Any], Any]
    # Optional ``warmup()`` the module defines; run once before the instance is ready.
    warmup: Callable[[], Any] | None = None
    source: str = ""

    @classmethod
    def from_module(cls, module: Any, source: str = "") -> "Handler":
        """Pick ``handle`` or ``lambda_handler`` (and ``warmup``) from a module-like object."""
        warmup = getattr(module, "warmup", None)
        warmup = warmup if callable(warmup) else None
        for name, kind in (("handle", "handle"), ("lambda_handler", "lambda")):
            func = getattr(module, name, None)
            if callable(func):
                if kind == "handle" and _takes_one_argument(func):
                    kind = "classic"
                return cls(kind, func, warmup, source)
        raise ConfigError(f"{source or module!r} defines neither handle(event, context) nor "
                          "lambda_handler(event, context); define one of them")


def _takes_one_argument(func: Callable) -> bool:
    """True for the classic template's ``handle(req)``: one positional parameter, no *args."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return False
    return len([p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) == 1


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles the source every time: no ``.pyc`` is read or written."""

    def get_code(self, fullname: str):
        return self.source_to_code(self.get_data(self.path), self.path)


def _source_only(folder: Path) -> None:
    """Imports from ``folder`` (``import helper``, ``from .helper``) compile the source."""
    sys.path_importer_cache[str(folder)] = importlib.machinery.FileFinder(
        str(folder),
        (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
        (_SourceLoader, importlib.machinery.SOURCE_SUFFIXES))


def _spec(name: str, path: Path, **kwargs):
    return importlib.util.spec_from_file_location(
        name, path, loader=_SourceLoader(name, str(path)), **kwargs)


def handler_path(function_dir: str | Path) -> Path:
    """The handler file of a function folder, checked to exist."""
    path = Path(function_dir).resolve() / "handler.py"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; a function folder needs a handler.py")
    return path


def load_handler(function_dir: str | Path, package: str = "function") -> Handler:
    """Import ``function_dir/handler.py`` as ``<package>.handler``.

    ``package`` is a namespace for the folder (tests load several folders in one
    process under different names); instances use "function", the template's name.
    """
    path = handler_path(function_dir)
    # Handlers import sibling modules by bare name too (scalezero's functions do).
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    _source_only(path.parent)
    pkg_spec = _spec(package, path.parent / "__init__.py",
                     submodule_search_locations=[str(path.parent)])
    pkg = importlib.util.module_from_spec(pkg_spec)
    spec = _spec(f"{package}.handler", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[package], sys.modules[spec.name] = pkg, module
    try:
        if (path.parent / "__init__.py").is_file():
            pkg_spec.loader.exec_module(pkg)
        spec.loader.exec_module(module)
    except BaseException:
        # As a failed `import` leaves nothing behind.
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[name]
        raise
    pkg.handler = module
    return Handler.from_module(module, str(path))


HANDLER_DIRECTIVE = "@handler"  # preload.txt: the template imports and warms the handler too


def _preload_lines(function_dir: str | Path) -> list[str]:
    path = Path(function_dir) / "preload.txt"
    if not path.is_file():
        return []
    names = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [n for n in names if n]


def preload_modules(function_dir: str | Path) -> list[str]:
    """Module names listed in ``function_dir/preload.txt`` (empty if there is none)."""
    return [n for n in _preload_lines(function_dir) if n != HANDLER_DIRECTIVE]


def wants_handler(function_dir: str | Path) -> bool:
    """Whether ``preload.txt`` has the ``@handler`` line."""
    return HANDLER_DIRECTIVE in _preload_lines(function_dir)


def preload(function_dir: str | Path) -> list[str]:
    """Import the heavy libraries a function needs, without creating per-instance state.

    Safe before ``fork``: it imports modules only (never the handler, which
    would load the model and start threads). Returns the modules imported.
    """
    names = preload_modules(function_dir)
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ConfigError(f"preload.txt names {name!r}, which cannot be imported: {e}") from None
    return names


class HandlerSlot:
    """Holds the handler once it is imported and warmed; the app reads it per request."""

    def __init__(self, handler: Handler | None = None):
        self._handler = handler
        self._error: str | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._handler is not None

    def get(self) -> Handler:
        """The handler, or NotReady (503 + Retry-After) while it loads or after it failed."""
        handler = self._handler
        if handler is None:
            raise NotReady(self.status_text())
        return handler

    def status_text(self) -> str:
        if self._error:
            return f"the handler failed to load: {self._error}"
        if self._handler is None:
            return "the handler is still loading; retry shortly"
        return "ready"

    def set(self, handler: Handler) -> None:
        with self._lock:
            self._handler = handler

    def fail(self, message: str) -> None:
        with self._lock:
            self._error = message


def load_into(slot: HandlerSlot, function_dir: str | Path, package: str = "function") -> bool:
    """Import and warm the handler into ``slot``; log and return False on failure."""
    try:
        handler = load_handler(function_dir, package)
        if handler.warmup is not None:
            handler.warmup()
    except Exception as e:  # any import-time failure: report it, never half-serve
        log.exception("loading the handler from %s failed", function_dir)
        slot.fail(f"{type(e).__name__}: {e}")
        return False
    slot.set(handler)
    log.info("handler %s (%s) is ready", handler.source, handler.kind)
    return True
