"""Read the object a storage event points to, for functions (preprocess, surveillance).

Two places an object can live: a local folder whose sub-folders are buckets
(``bucket_root``; ``scalezero watch`` uses the watched folder as the bucket), or
an S3-compatible endpoint read over HTTP. A function fetches URLs only under
``allowed_url_prefixes`` (none by default) and never follows redirects, so an
event cannot make it reach an arbitrary host.
"""

import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from scalezero.errors import BadRequest, ConfigError, PayloadTooLarge, ScalezeroError


class ObjectNotFound(ScalezeroError):
    status = 404


class Forbidden(ScalezeroError):
    status = 403


@dataclass(frozen=True)
class ObjectStore:
    """Where a function looks for event objects."""

    bucket_root: Path | None = None  # folder holding one sub-folder per bucket; None = no local
    endpoint: str = ""  # S3-compatible base URL (http://127.0.0.1:9000); "" = no remote
    allowed_url_prefixes: tuple[str, ...] = ()  # URLs a function may fetch; () = none
    max_bytes: int = 32 * 1024 * 1024  # largest object read
    timeout_s: float = 10.0  # per URL fetch

    def __post_init__(self):
        if self.max_bytes <= 0:
            raise ConfigError(f"max_bytes = {self.max_bytes}, must be > 0")
        if self.timeout_s <= 0:
            raise ConfigError(f"timeout_s = {self.timeout_s}, must be > 0")

    @classmethod
    def from_env(cls, env: dict[str, str]) -> "ObjectStore":
        """bucket_root, s3_endpoint, allowed_url_prefixes (comma list), max_object_bytes."""
        root = env.get("bucket_root", "")
        prefixes = tuple(p.strip() for p in env.get("allowed_url_prefixes", "").split(",") if p.strip())
        return cls(bucket_root=Path(root).resolve() if root else None,
                   endpoint=env.get("s3_endpoint", "").rstrip("/"),
                   allowed_url_prefixes=prefixes,
                   max_bytes=int(env.get("max_object_bytes", 32 * 1024 * 1024)))

    def read(self, bucket: str, key: str) -> tuple[str, bytes]:
        """(where it was read from, bytes) of bucket/key: local folder first, then endpoint."""
        if self.bucket_root is not None and (self.bucket_root / bucket).is_dir():
            path = local_path(self.bucket_root, bucket, key)
            return str(path), read_file(path, self.max_bytes)
        if self.endpoint:
            url = f"{self.endpoint}/{quote(bucket)}/{quote(key)}"
            return url, self.fetch(url)
        raise ObjectNotFound(f"bucket {bucket!r} is neither a folder under bucket_root "
                             f"({self.bucket_root}) nor reachable (s3_endpoint is not set)")

    def fetch(self, url: str) -> bytes:
        """GET ``url`` if an allowed prefix covers it; no redirects; at most max_bytes."""
        if not url_allowed(url, self.allowed_url_prefixes):
            raise Forbidden(f"URL {url} is not under allowed_url_prefixes; add its prefix "
                            "to the function's allowed_url_prefixes to allow it")
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(url, timeout=self.timeout_s) as resp:
                data = resp.read(self.max_bytes + 1)
        except urllib.error.HTTPError as e:
            err = ObjectNotFound if e.code == 404 else BadRequest
            raise err(f"GET {url} answered {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            raise BadRequest(f"GET {url} failed: {getattr(e, 'reason', e)}") from None
        return _bounded(data, self.max_bytes, url)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could lead anywhere; allowed prefixes must hold for the final URL too.
    def redirect_request(self, *args, **kwargs):
        return None


def url_allowed(url: str, prefixes: tuple[str, ...]) -> bool:
    """True when scheme and host equal a prefix's and the path starts with its path."""
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or u.username or u.password or ".." in u.path.split("/"):
        return False
    for prefix in prefixes:
        p = urlsplit(prefix)
        if (u.scheme, u.netloc.lower()) == (p.scheme, p.netloc.lower()) and u.path.startswith(p.path):
            return True
    return False


def local_path(root: Path, bucket: str, key: str) -> Path:
    """root/bucket/key, refusing anything that resolves outside root/bucket."""
    if not bucket or "/" in bucket or bucket in (".", ".."):
        raise BadRequest(f"bucket name {bucket!r} is invalid")
    base = (root / bucket).resolve()
    path = (base / key).resolve()
    if not path.is_relative_to(base) or path == base:
        raise BadRequest(f"object key {key!r} leaves bucket {bucket!r}")
    return path


def read_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a local object, or ObjectNotFound."""
    try:
        with path.open("rb") as f:
            return _bounded(f.read(max_bytes + 1), max_bytes, str(path))
    except FileNotFoundError:
        raise ObjectNotFound(f"object {path} does not exist") from None
    except IsADirectoryError:
        raise BadRequest(f"object {path} is a folder") from None


def _bounded(data: bytes, max_bytes: int, where: str) -> bytes:
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"object {where} is larger than max_object_bytes ({max_bytes})")
    return data
