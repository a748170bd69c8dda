"""TLS for the Knative ingress: per-host certificates from the Ingresses' Secrets, by SNI.

An Ingress's ``spec.tls`` names, per list of hosts, a ``kubernetes.io/tls``
Secret (``tls.crt``, ``tls.key``). The HTTPS listener has one server context
whose SNI callback switches to the host's own context; a host with no
certificate gets its handshake refused (``unrecognized_name``). Contexts are
cached by the Secret's resourceVersion, so an unchanged Secret is loaded once.
"""

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass, field


def tls_entries(obj: dict) -> list[tuple[tuple[str, ...], str, str]]:
    """(hosts, secret namespace, secret name) of each ``spec.tls`` entry."""
    meta = obj.get("metadata") or {}
    return [(tuple(h.lower() for h in t.get("hosts") or ()), t.get("secretNamespace") or meta.get("namespace", ""),
             t["secretName"]) for t in (obj.get("spec") or {}).get("tls") or []]


def context_for(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server context holding one certificate chain (ssl loads chains only from files)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="scalezero-tls-") as tmp:
        cert, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        for path, data in ((cert, cert_pem), (key, key_pem)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cert, key)
    return ctx


@dataclass
class Certificates:
    """Host -> server context, replaced whole on each sync; ``server_context`` serves them."""

    by_host: dict[str, ssl.SSLContext] = field(default_factory=dict)
    _loaded: dict[tuple[str, str], tuple[str, ssl.SSLContext]] = field(default_factory=dict)

    def load(self, read_secret, namespace: str, name: str) -> ssl.SSLContext:
        """The context of Secret namespace/name (``read_secret`` returns a V1Secret)."""
        secret = read_secret(name, namespace)
        version = secret.metadata.resource_version or ""
        cached = self._loaded.get((namespace, name))
        if cached and cached[0] == version:
            return cached[1]
        data = secret.data or {}
        if "tls.crt" not in data or "tls.key" not in data:
            raise ValueError(f"secret {namespace}/{name} has no tls.crt and tls.key")
        ctx = context_for(base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"]))
        self._loaded[(namespace, name)] = (version, ctx)
        return ctx

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.sni_callback = self._pick
        return ctx

    def _pick(self, sslobj: ssl.SSLObject, server_name: str | None, _ctx) -> int | None:
        chosen = self.by_host.get((server_name or "").lower())
        if chosen is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sslobj.context = chosen
        return None
