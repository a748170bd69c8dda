"""Durations and sizes as people write them, parsed in one place.

Durations are Go's (``2m5s``, ``500ms``, ``1h``) or bare seconds, as in
stack.yml annotations, of-watchdog timeouts and ``scalezero up`` flags; sizes
are Kubernetes quantities (``32Mi``, ``10M``, ``1048576``), as in limits,
``max_body_size`` and ``--max-body``.
"""

import re
from typing import Any

from scalezero.errors import ConfigError

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
_SIZE_RE = re.compile(r"^(\d+)\s*([kKMGT]i?)?[bB]?$")
_SIZE_UNITS = {None: 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
               "ki": 2**10, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


class BadUnit(ConfigError, ValueError):
    """Text that is not a duration or a size: a ConfigError (400, the CLI exits 2) that
    parsers of mappings can also catch as the ValueError it is."""


def parse_duration(text: Any) -> float:
    """Seconds from a Go duration (``2m5s``, ``500ms``) or a bare number of seconds."""
    s = str(text).strip()
    try:
        return float(s)
    except ValueError:
        pass
    if not s or _DURATION_RE.sub("", s):
        raise BadUnit(f"{text!r} is not a duration (examples: 30s, 2m5s, 500ms, 1h)")
    return sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_RE.findall(s))


def parse_size(text: Any) -> int:
    """Bytes from ``1048576``, ``32Mi``, ``10M``, ``512Ki``, ``1Gi`` (Kubernetes quantity style)."""
    m = _SIZE_RE.match(str(text).strip())
    if not m:
        raise BadUnit(f"{text!r} is not a size (examples: 1048576, 512Ki, 32Mi, 1Gi)")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2)]
