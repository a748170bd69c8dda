"""The KPA scaler: bounds, initial scale and the scale-to-zero state machine (pure, fake times)."""

import pytest

from scalezero.autoscaler import scaletozero as stz
from scalezero.autoscaler.scaletozero import ACTIVATING, ACTIVE, INACTIVE, PAState, ScalerConfig

CFG = ScalerConfig(stable_window_s=60, grace_s=30, retention_s=0, activation_timeout_s=100,
                   initial_scale=1)
NOW = 1000.0


def pa(status, age, initialized=True):
    return PAState(status, since=NOW - age, scale_target_initialized=initialized)


@pytest.mark.parametrize("cfg, state, desired, want, why", [
    (CFG, pa(ACTIVE, 10), 0, (1, True), "active < stable window: keep one instance"),
    (CFG, pa(ACTIVE, 60), 0, (0, False), "active a whole window: 0, not applied (goes inactive)"),
    (CFG, pa(INACTIVE, 29), 0, (0, False), "inactive within the grace period: keep"),
    (CFG, pa(INACTIVE, 30), 0, (0, True), "inactive for the grace period: scale to 0"),
    (ScalerConfig(grace_s=30, retention_s=90), pa(INACTIVE, 60), 0, (0, False),
     "last-pod retention outlasts the grace period"),
    (ScalerConfig(grace_s=30, retention_s=90), pa(INACTIVE, 90), 0, (0, True),
     "retention over: scale to 0"),
    (CFG, pa(ACTIVATING, 50), 0, (-1, False), "activating: wait for the activation timeout"),
    (CFG, pa(ACTIVATING, 101), 0, (0, True), "activation timed out: give up, 0"),
    (CFG, pa(INACTIVE, 0), -1, (-1, False), "no metrics yet: change nothing"),
    (ScalerConfig(min_scale=2), pa(INACTIVE, 0), 0, (2, True), "min scale wins over 0"),
    (ScalerConfig(max_scale=3), pa(ACTIVE, 0), 9, (3, True), "max scale caps"),
    (ScalerConfig(initial_scale=4), pa(ACTIVATING, 0, initialized=False), 1, (4, True),
     "a new function must reach its initial scale once"),
    (ScalerConfig(initial_scale=4), pa(ACTIVE, 0), 1, (1, True), "initial scale reached: ignored"),
    (ScalerConfig(enable_scale_to_zero=False), pa(INACTIVE, 999), 0, (1, True),
     "scale to zero disabled: 0 becomes 1"),
])
def test_scale(cfg, state, desired, want, why):
    out = stz.scale(cfg, state, desired, NOW)
    assert (out.scale, out.apply) == want, why


def test_fast_path_when_the_activator_proxied_for_the_grace_period():
    out = stz.scale(CFG, pa(INACTIVE, 1), 0, NOW, proxy_for_s=30)
    assert (out.scale, out.apply) == (0, True)


def test_failed_activator_probe_starts_an_async_probe_and_waits():
    out = stz.scale(CFG, pa(INACTIVE, 999), 0, NOW, probe_ok=False)
    assert (out.scale, out.apply, out.probe_started) == (0, False, True)


@pytest.mark.parametrize("replicas, scale, apply, want", [
    (3, 3, True, None), (3, 1, True, 1), (3, 0, False, None), (None, 1, True, None),
])
def test_patch_only_writes_a_change(replicas, scale, apply, want):
    assert stz.patch(stz.ScaleOutcome(scale, apply), replicas) == want


@pytest.mark.parametrize("state, want_, ready, status, why", [
    (pa(INACTIVE, 5), 1, 0, ACTIVATING, "asked for an instance, none ready: activating"),
    (pa(ACTIVATING, 5), 1, 1, ACTIVE, "ready: active"),
    (pa(ACTIVE, 70), 0, 1, INACTIVE, "the scaler said 0: inactive"),
    (pa(INACTIVE, 5), -1, 0, INACTIVE, "no metrics while inactive: stays inactive"),
])
def test_active_condition(state, want_, ready, status, why):
    after = stz.next_pa(CFG, state, want_, ready, NOW)
    assert after.status == status, why
    assert after.since == (state.since if status == state.status else NOW), "since = transition"
