"""One checker per case kind of ``kpa-cases.json``; each raises CaseFailure on a mismatch.

The field meanings are the file's own ``field_definitions``. ``kpa_decider_init``
(listed there, but with no case in the reference file) is read as a decider case
whose ``init`` (or each of ``inits``) carries an ``expect`` of the state right
after ``newAutoscaler``: ``panic_mode``, ``panic_started_at``, ``max_panic_pods``.
"""

import dataclasses
import math
from typing import Any, Callable

from scalezero.autoscaler import scaletozero as stz
from scalezero.autoscaler.collector import Collector, Observed, Stat, scrape_sample_size
from scalezero.autoscaler.decider import DeciderSpec, DeciderState, decide, initial_state
from scalezero.autoscaler.target import panic_window_s, resolve_metric_target
from scalezero.autoscaler.window import TimedBuckets


class CaseFailure(Exception):
    """A case's expectation did not hold; the message says which and how."""


def expect(what: str, got: Any, want: Any, tol: float = 1e-9) -> None:
    """Raise CaseFailure unless ``got`` equals ``want`` (numbers within ``tol``)."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (got, want))
    same = math.isclose(got, want, rel_tol=1e-9, abs_tol=tol) if numbers else got == want
    if not same:
        raise CaseFailure(f"{what}: got {got!r}, want {want!r}")


def _spec(raw: dict) -> DeciderSpec:
    return DeciderSpec(
        target_value=raw["target_value"], total_value=raw["total_value"],
        target_burst_capacity=raw["target_burst_capacity"],
        panic_threshold=raw["panic_threshold"], max_scale_up_rate=raw["max_scale_up_rate"],
        max_scale_down_rate=raw["max_scale_down_rate"], stable_window_s=raw["stable_window_s"],
        scale_down_delay_s=raw.get("scale_down_delay_s", 0),
        reachable=raw.get("reachable", True), activation_scale=raw.get("activation_scale", 0),
        metric=raw.get("scaling_metric", "concurrency"))


def _ready(raw: dict, key: str = "ready_pods", error_key: str = "ready_pods_error") -> int | None:
    """A pod count; an 'other' error is None (invalid), NotFound counts as 0."""
    error = raw.get(error_key)
    if error == "not_found":
        return 0
    return None if error else raw[key]


def _check_state(where: str, state: DeciderState, want: dict) -> None:
    got = {"panic_mode": state.panic, "panic_started_at": state.panic_started_at,
           "max_panic_pods": state.max_panic_pods}
    for key in got.keys() & want.keys():
        expect(f"{where} {key}", got[key], want[key])


def _initial(case: dict, spec: DeciderSpec) -> DeciderState:
    state = None
    for n, init in enumerate(case.get("inits") or [case.get("init", {})]):
        ready = (_ready(init, "ready_pods_at_creation", "ready_pods_error_at_creation")
                 if init else 0)
        state = initial_state(spec, ready, init.get("t_created", 0.0))
        _check_state(f"init {n}", state, init.get("expect", {}))
    preset = case.get("preset_state") or {}
    return dataclasses.replace(state, **{k: preset[k] for k in preset
                                         if k in ("panic_started_at", "max_panic_pods")})


def check_decider(case: dict) -> None:
    """kpa_decider / kpa_decider_init: Scale() steps on one autoscaler."""
    spec = _spec(case["spec"])
    state = _initial(case, spec)
    for n, step in enumerate(case.get("steps", [])):
        spec = _spec(step["spec_update"]) if "spec_update" in step else spec
        observed = None if step.get("metrics_error") else Observed(step["observed_stable"],
                                                                   step["observed_panic"])
        result, state = decide(spec, state, observed, _ready(step), step["t"])
        where, want = f"step {n} (t={step['t']:g})", step["expect"]
        expect(f"{where} valid", result.valid, want["valid"])
        expect(f"{where} desired_pods", result.desired_pods, want["desired_pods"])
        expect(f"{where} excess_burst_capacity", result.excess_burst_capacity,
               want["excess_burst_capacity"], tol=case.get("ebc_tolerance", 0))
        if "expect_panic_mode" in step:
            expect(f"{where} panic_mode", result.panic, step["expect_panic_mode"])
        if "expect_panic_started_at" in step:
            expect(f"{where} panic_started_at", state.panic_started_at,
                   step["expect_panic_started_at"])
        got = {"desired_pods": result.desired_pods, "stable": result.stable,
               "panic": result.panic_value, "target": result.target}
        for key, value in step.get("expect_metrics", {}).items():
            expect(f"{where} metric {key}", got[key], value)
        _check_state(f"{where} derived", state, step.get("derived_after_step", {}))


def check_timed_buckets(case: dict) -> None:
    buckets = TimedBuckets(case["window_s"], case.get("granularity_s", 1))
    for n, op in enumerate(case["ops"]):
        if op["op"] == "record":
            buckets.record(op["t"], op["value"])
        elif op["op"] == "window_average":
            expect(f"op {n} window_average({op['t']:g})", buckets.average(op["t"]),
                   op["expect"], tol=op.get("tolerance", 1e-9))
        else:
            raise CaseFailure(f"op {n}: unknown op {op['op']!r}")


def check_collector(case: dict) -> None:
    collector = Collector(case["stable_window_s"], case["panic_window_s"],
                          scrape_target=bool(case.get("scrape_target")))
    for n, op in enumerate(case["ops"]):
        if op["op"] == "record_stat":
            collector.record(op["t"], Stat(**op["stat"]))
        elif op["op"] == "query":
            _check_query(f"op {n} query({op['t']:g})", collector, op)
        else:
            raise CaseFailure(f"op {n}: unknown op {op['op']!r}")


def _check_query(where: str, collector: Collector, op: dict) -> None:
    conc, rps = (collector.observed(op["t"], m) for m in ("concurrency", "rps"))
    if op.get("expect_error") == "no_data":
        expect(f"{where} error", "no_data" if conc is None and rps is None else None, "no_data")
        return
    if conc is None or rps is None:
        raise CaseFailure(f"{where}: got no_data, want values")
    got = {"stable_concurrency": conc.stable, "panic_concurrency": conc.panic,
           "stable_rps": rps.stable, "panic_rps": rps.panic}
    for key, value in op["expect"].items():
        expect(f"{where} {key}", got[key], value, tol=op.get("tolerance", 1e-9))


def check_resolve_target(case: dict) -> None:
    pa, cfg = case["input"]["pa"], case["input"]["config"]
    tu = pa.get("target_utilization_percentage_annotation")
    target, total = resolve_metric_target(
        pa["metric"], pa.get("container_concurrency", 0), pa.get("target_annotation"),
        None if tu is None else tu / 100, cc_fraction=cfg["cc_target_fraction"],
        cc_default=cfg["cc_target_default"], rps_default=cfg["rps_default"],
        rps_utilization=cfg["target_utilization"])
    expect("target", target, case["expect"]["target"])
    expect("total", total, case["expect"]["total"])


def check_panic_window(case: dict) -> None:
    inp = case["input"]
    got = panic_window_s(inp["stable_window_s"], inp["panic_window_percentage"])
    expect("panic_window_s", got, case["expect"]["panic_window_s"])


def check_sample_size(case: dict) -> None:
    got = scrape_sample_size(case["input"]["ready_pods"])
    expect("sample_size", got, case["expect"]["sample_size"])


def _scaler_config(cfg: dict, inp: dict) -> stz.ScalerConfig:
    initial = inp.get("initial_scale_annotation")
    if initial is None or (initial == 0 and not cfg.get("allow_zero_initial_scale")):
        initial = cfg.get("initial_scale", 1)  # GetInitialScale
    # The input's bounds are the PA annotations; without them the config's apply.
    lo, hi = (inp[k] if inp.get(k) is not None else cfg.get(k, 0)
              for k in ("min_scale", "max_scale"))
    return stz.ScalerConfig(
        stable_window_s=cfg["stable_window_s"], grace_s=cfg["scale_to_zero_grace_period_s"],
        retention_s=cfg.get("scale_to_zero_pod_retention_s", 0),
        activation_timeout_s=cfg["progress_deadline_s"] + cfg.get("activation_timeout_buffer_s", 30),
        enable_scale_to_zero=cfg.get("enable_scale_to_zero", True),
        target_burst_capacity=cfg.get("target_burst_capacity", 211),
        min_scale=lo, max_scale=hi, initial_scale=initial,
        reachable=inp.get("reachable", True))


def check_scaler(case: dict) -> None:
    inp, want, now = case["input"], case["expect"], 10_000.0
    cfg = _scaler_config(case["config"], inp)
    pa = stz.PAState(inp["pa_state"], since=now - inp.get("state_age_s", 0),
                     scale_target_initialized=inp.get("scale_target_initialized", False))
    out = stz.scale(cfg, pa, inp["desired_scale"], now, sks_proxy=inp.get("sks_mode") == "proxy",
                    proxy_for_s=inp.get("sks_proxy_for_s", 0),
                    probe_ok=inp.get("activator_probe_ok", True))
    expect("returned_scale", out.scale, want["returned_scale"])
    expect("patched_to", stz.patch(out, inp.get("start_replicas")), want["patched_to"])
    expect("requeue", out.requeue_after_s is not None, want.get("requeue", False))
    expect("async_probe_started", out.probe_started, want.get("async_probe_started", False))


CHECKERS: dict[str, Callable[[dict], None]] = {
    "kpa_decider": check_decider,
    "kpa_decider_init": check_decider,
    "timed_buckets": check_timed_buckets,
    "collector": check_collector,
    "resolve_metric_target": check_resolve_target,
    "panic_window": check_panic_window,
    "scrape_sample_size": check_sample_size,
    "kpa_scaler": check_scaler,
}
