"""Importing a function's file (handler.py, detector.py, ...) by path, as a fresh module.

Function folders are not packages (their names have dashes), so tests load their files
by path; each call gives a new module object under ``name``.
"""

import importlib.util
from pathlib import Path
from types import ModuleType


def load_module(path: Path, name: str) -> ModuleType:
    """Execute ``path`` as a new module called ``name`` (not added to sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
