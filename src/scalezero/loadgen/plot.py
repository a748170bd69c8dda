"""The PNG timeline: per function, request rate, instances, p99 latency over time."""

import math
from pathlib import Path

# A Figure of its own, not pyplot: it draws to a file with no backend to choose
# and no global state, so importing this module changes nothing for the caller.
from matplotlib.figure import Figure


def _rel(series, t0: float):
    ts, vs = series
    return [t - t0 for t in ts], vs


def plot_timeline(timeline: dict, client: dict, t0: float, path: Path, title: str = "") -> Path:
    """Write the PNG: three panels per function sharing the time axis."""
    functions = sorted(timeline)
    fig = Figure(figsize=(11, 2.6 * 3 * len(functions)))
    axes = fig.subplots(3 * len(functions), 1, sharex=True, squeeze=False)
    for i, f in enumerate(functions):
        rate_ax, inst_ax, lat_ax = (axes[3 * i + k][0] for k in range(3))
        _rate_panel(rate_ax, timeline[f], client.get(f, {}), t0, f)
        _instances_panel(inst_ax, timeline[f], t0, f)
        _latency_panel(lat_ax, timeline[f], client.get(f, {}), t0, f)
    axes[-1][0].set_xlabel("seconds since the load started")
    fig.suptitle(title or "scalezero: scaling timeline")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def _rate_panel(ax, series: dict, client: dict, t0: float, f: str) -> None:
    if "sent" in client:
        ax.bar(*_rel(client["sent"], t0), width=1.0, color="#c6dbef", label="sent by load generator (1 s bins)")
    ax.plot(*_rel(series["rate"], t0), color="#08519c", label="gateway invocations (rate over 5 s)")
    ax.set_ylabel("req/s")
    ax.set_title(f"{f}: request rate", loc="left", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)


def _instances_panel(ax, series: dict, t0: float, f: str) -> None:
    ax.step(*_rel(series["ready"], t0), where="post", color="#31a354", linewidth=3,
            label="ready (gateway_service_count)")
    ax.step(*_rel(series["desired"], t0), where="post", color="#d94801", linestyle="--",
            label="desired (autoscaler_desired_pods)")
    top = max([v for v in series["ready"][1] + series["desired"][1] if not math.isnan(v)], default=1)
    ax.set_ylim(-0.2, top + 1)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("instances")
    ax.set_title(f"{f}: instances", loc="left", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)


def _latency_panel(ax, series: dict, client: dict, t0: float, f: str) -> None:
    if "client_p99" in client:
        ax.plot(*_rel(client["client_p99"], t0), "o", markersize=3, color="#bdbdbd",
                label="p99 seen by the load generator (by send second)")
    ax.plot(*_rel(series["p99"], t0), color="#a50f15", label="gateway p99 (5 s window, interpolated within histogram buckets)")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("seconds")
    ax.set_title(f"{f}: p99 latency", loc="left", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
