"""The hash Knative's ingress prober expects back: ``ingress.ComputeHash`` in Python.

Knative's data-plane contract (knative.dev/networking/pkg/ingress.InsertProbe):
a request carrying ``K-Network-Hash: override`` must reach the backend with that
header set to the hex SHA-256 of the Ingress's spec, as Go's ``json.Marshal``
writes it, followed by the namespace and the name. The backend's probe handler
echoes the header, so a prober can tell which generation a gateway serves.

Go's encoding fixes the bytes: struct fields in declaration order, ``omitempty``
fields left out when empty, map keys sorted, no spaces, ``<``, ``>``, ``&``,
U+2028 and U+2029 escaped. The field orders below are
knative.dev/networking/pkg/apis/networking/v1alpha1's ``IngressSpec`` and below.
"""

import hashlib
import json
from typing import Any

HASH_KEY = "K-Network-Hash"
HASH_OVERRIDE = "override"

# (json name, omitempty, encoder of the value) in Go's field order.
_TLS = (("hosts", True, list), ("secretName", True, str), ("secretNamespace", True, str))
_SPLIT = (("serviceNamespace", False, str), ("serviceName", False, str),
          ("servicePort", False, lambda v: v), ("percent", True, int),
          ("appendHeaders", True, lambda m: dict(sorted(m.items()))))
_PATH = (("path", True, str), ("rewriteHost", True, str),
         ("headers", True, lambda m: {k: {"exact": (v or {}).get("exact", "")} for k, v in sorted(m.items())}),
         ("splits", False, lambda xs: None if xs is None else [_struct(s, _SPLIT) for s in xs]),
         ("appendHeaders", True, lambda m: dict(sorted(m.items()))))
_RULE = (("hosts", True, list), ("visibility", True, str),
         ("http", True, lambda h: {"paths": None if h.get("paths") is None
                                   else [_struct(p, _PATH) for p in h["paths"]]}))
_SPEC = (("tls", True, lambda xs: [_struct(t, _TLS) for t in xs]),
         ("rules", True, lambda xs: [_struct(r, _RULE) for r in xs]),
         ("httpOption", True, str))


def _struct(obj: dict, fields) -> dict:
    out = {}
    for name, omitempty, encode in fields:
        value = obj.get(name)
        if omitempty and value in (None, "", 0, [], {}):
            continue
        out[name] = encode(value) if value is not None else None
    return out


def go_json(spec: dict) -> bytes:
    """``spec`` (an Ingress's spec as the API returns it) encoded as Go encodes IngressSpec."""
    text = json.dumps(_struct(spec or {}, _SPEC), separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text.encode()


def probe_hash(obj: dict[str, Any]) -> str:
    """Hex SHA-256 of the spec's Go JSON + namespace + name (Knative's ComputeHash)."""
    meta = obj.get("metadata") or {}
    data = go_json(obj.get("spec") or {}) + (meta.get("namespace") or "").encode() + (meta.get("name") or "").encode()
    return hashlib.sha256(data).hexdigest()
