"""The surveillance function's I/O: calling yolo-detect through the gateway, the webhook, metrics."""

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable

from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger("surveillance")


@dataclass(frozen=True)
class Config:
    """Surveillance settings, from the function's environment."""

    gateway_url: str = "http://127.0.0.1:8080"  # yolo-detect is called through the gateway
    detector: str = "yolo-detect"  # the function that detects
    detect_confidence: float = 0.25  # detections below this are not returned by the detector
    detect_timeout_s: float = 120.0  # a cold detector start is included in this
    alert_confidence: float = 0.5  # a person at or above this raises an alert
    merge_window_s: float = 60.0  # alerts from one camera within this fold into one
    webhook_url: str = ""  # where alerts are POSTed; "" = log and metric only
    webhook_attempts: int = 4  # tries per alert
    webhook_backoff_s: float = 0.5  # wait before the first retry; doubles each time

    def __post_init__(self):
        for name, ok, rule in (
                ("alert_confidence", 0 <= self.alert_confidence <= 1, "in [0, 1]"),
                ("detect_confidence", 0 <= self.detect_confidence <= 1, "in [0, 1]"),
                ("merge_window_s", self.merge_window_s >= 0, ">= 0"),
                ("detect_timeout_s", self.detect_timeout_s > 0, "> 0"),
                ("webhook_attempts", self.webhook_attempts >= 1, ">= 1"),
                ("webhook_backoff_s", self.webhook_backoff_s >= 0, ">= 0")):
            if not ok:
                raise ValueError(f"{name} = {getattr(self, name)!r}, must be {rule}")

    @classmethod
    def from_env(cls, env) -> "Config":
        kinds = {f.name: f.type for f in cls.__dataclass_fields__.values()}
        values = {k: (float(env[k]) if kinds[k] in (float, "float") else
                      int(env[k]) if kinds[k] in (int, "int") else env[k])
                  for k in kinds if env.get(k)}
        return cls(**values)


class DetectorError(Exception):
    """yolo-detect could not be reached or answered with an error."""

    def __init__(self, message: str, status: int = 502):
        super().__init__(message)
        self.status = status


def detect(cfg: Config, image: bytes, content_type: str) -> tuple[dict, float]:
    """POST the frame to yolo-detect through the gateway; (response JSON, cold-start seconds)."""
    url = f"{cfg.gateway_url.rstrip('/')}/function/{cfg.detector}?conf={cfg.detect_confidence}"
    req = urllib.request.Request(url, image, {"Content-Type": content_type or "image/jpeg"},
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=cfg.detect_timeout_s) as resp:
            cold = float(resp.headers.get("X-Scalezero-Cold-Start") or 0)
            return json.loads(resp.read()), cold
    except urllib.error.HTTPError as e:
        body = e.read()[:300].decode("utf-8", "replace")
        # A 4xx means the frame itself is bad; anything else is the chain failing.
        raise DetectorError(f"{cfg.detector} answered {e.code}: {body}",
                            e.code if 400 <= e.code < 500 else 502) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DetectorError(f"{cfg.detector} via {cfg.gateway_url} failed: "
                            f"{getattr(e, 'reason', e)}") from None


def post_webhook(cfg: Config, payload: dict,
                 sleep: Callable[[float], None] = time.sleep) -> dict:
    """POST an alert, retried with backoff on errors, 429 and 5xx; returns the outcome."""
    data = json.dumps(payload).encode()
    delay, status, error = cfg.webhook_backoff_s, 0, ""
    for attempt in range(1, cfg.webhook_attempts + 1):
        req = urllib.request.Request(cfg.webhook_url, data, {"Content-Type": "application/json"},
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return {"ok": True, "status": resp.status, "attempts": attempt}
        except urllib.error.HTTPError as e:
            status, error = e.code, f"answered {e.code}"
            if e.code != 429 and e.code < 500:
                break  # the receiver refuses this alert; retrying will not change that
        except (urllib.error.URLError, OSError) as e:
            status, error = 0, str(getattr(e, "reason", e))
        if attempt < cfg.webhook_attempts:
            sleep(delay)
            delay *= 2
    log.error("alert webhook %s failed after %d attempt(s): %s", cfg.webhook_url, attempt, error)
    return {"ok": False, "status": status, "attempts": attempt, "error": error}


class AlertMetrics:
    """``scalezero_alerts_total{camera,kind}`` and merged alerts, on the instance's registry."""

    def __init__(self, registry: CollectorRegistry):
        self.alerts = Counter("scalezero_alerts", "Alerts raised (sent), by camera and kind",
                              ["camera", "kind"], registry=registry)
        self.merged = Counter("scalezero_alerts_merged",
                              "Alerts folded into an open alert of the same camera",
                              ["camera", "kind"], registry=registry)
