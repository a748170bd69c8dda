"""Test helper: the Grafana dashboard's PromQL, with Grafana's variables filled in.

Grafana is not needed to check a dashboard: its expressions, with ``$function``,
``$__rate_interval`` and ``$__range`` substituted, are plain PromQL that a real
Prometheus can run (the e2e test does) and promtool can parse.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from procs import REPO

DASHBOARD = REPO / "charts" / "scalezero" / "dashboards" / "scalezero.json"


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel."""

    panel: str  # panel title
    ref_id: str  # the target's refId (A, B, ...)
    expr: str  # PromQL as written in the dashboard


def load(path: Path = DASHBOARD) -> dict:
    return json.loads(Path(path).read_text())


def queries(dashboard: dict) -> list[PanelQuery]:
    """Every PromQL target of every panel (rows' nested panels included)."""
    out = []
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            out.append(PanelQuery(panel["title"], target["refId"], target["expr"]))
    return out


def _panels(panels: list[dict]) -> list[dict]:
    out = []
    for p in panels:
        out.append(p)
        out.extend(_panels(p.get("panels", [])))
    return out


def substitute(expr: str, function: str = ".*", rate_interval: str = "5s",
               range_: str = "5m", interval: str = "1s") -> str:
    """Grafana's variables replaced as Grafana would for one refresh."""
    for var, value in (("$__rate_interval", rate_interval), ("$__range", range_),
                       ("$__interval", interval), ("${function}", function),
                       ("$function", function)):
        expr = expr.replace(var, value)
    return expr
