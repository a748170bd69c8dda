"""One function's KPA: collector + decider + scaler, from its ScalingSettings.

The gateway plays the queue-proxy and the activator (it sees every request), so
it records one stat a second and asks for a decision every 2 s, or at once when a
request arrives at zero. ``decide`` returns the replica count to apply, after the
min/max/initial bounds and the scale-to-zero state machine.
"""

from dataclasses import dataclass

from scalezero.autoscaler import scaletozero as stz
from scalezero.autoscaler.collector import Collector, Stat
from scalezero.autoscaler.decider import DeciderSpec, ScaleResult, decide, initial_state
from scalezero.autoscaler.target import panic_window_s, target_from_settings
from scalezero.stack import ScalingSettings

ACTIVATION_TIMEOUT_S = 630.0  # Knative: progress-deadline 600 s + activationTimeoutBuffer 30 s


@dataclass(frozen=True)
class Decision:
    """One tick's outcome. ``valid=False`` means no data yet: ``desired`` is unchanged."""

    desired: int  # replica count to apply (bounds and scale-to-zero applied)
    requested: int  # what the KPA decider asked for (Knative's DesiredScale; -1 = no data yet)
    panic: bool  # panic mode
    stable_concurrency: float  # stable-window average concurrency (function total)
    panic_concurrency: float  # panic-window average concurrency (function total)
    target: float  # per-instance target
    excess_burst_capacity: int  # < 0: not enough spare capacity for a burst of TBC
    valid: bool  # the decider had data and a pod count
    state: str = stz.ACTIVATING  # the PA's Active condition: activating | active | inactive


def decider_spec(s: ScalingSettings) -> DeciderSpec:
    """Knative's MakeDecider for one function."""
    target, total = target_from_settings(s)
    return DeciderSpec(target_value=target, total_value=total,
                       target_burst_capacity=s.target_burst_capacity,
                       panic_threshold=s.panic_threshold_pct / 100,
                       max_scale_up_rate=s.max_scale_up_rate,
                       max_scale_down_rate=s.max_scale_down_rate,
                       stable_window_s=s.stable_window_s,
                       scale_down_delay_s=s.scale_down_delay_s,
                       activation_scale=s.activation_scale, metric=s.metric)


def scaler_config(s: ScalingSettings, activation_timeout_s: float) -> stz.ScalerConfig:
    return stz.ScalerConfig(stable_window_s=s.stable_window_s, grace_s=s.scale_to_zero_grace_s,
                            retention_s=s.scale_to_zero_retention_s,
                            activation_timeout_s=activation_timeout_s,
                            enable_scale_to_zero=s.enable_scale_to_zero,
                            target_burst_capacity=s.target_burst_capacity,
                            min_scale=s.min_scale, max_scale=s.max_scale,
                            initial_scale=s.initial_scale)


class FunctionAutoscaler:
    """Knative's KPA for one function, driven by the gateway's clock.

    Call ``record`` once a second with that second's average concurrency (queued +
    in flight) and request count, zeros included while instances exist; records in
    the same second add up (as Knative sums scraper and activator stats). Call
    ``decide`` every 2 s; the gateway's scaling loop calls ``record_activator_stat``
    when a request waits at zero, and decides at once.
    """

    def __init__(self, settings: ScalingSettings, now: float,
                 activation_timeout_s: float = ACTIVATION_TIMEOUT_S):
        self.settings = settings
        self.spec = decider_spec(settings)
        self.config = scaler_config(settings, activation_timeout_s)
        self.collector = Collector(settings.stable_window_s,
                                   panic_window_s(settings.stable_window_s,
                                                  settings.panic_window_pct))
        self._state = initial_state(self.spec, 0, now)  # a new function has no instances
        self._pa = stz.PAState(stz.ACTIVATING, since=now)  # a new PA is Active=Unknown
        self._requested = stz.SCALE_UNKNOWN  # the multiscaler's DesiredScale starts at -1
        self.replicas = settings.initial_scale  # the deployment starts at the initial scale
        self._ebc = self._initial_ebc()  # kept from the last valid decision
        self._poke_credit = 0.0  # activator stat the next sample must net out

    def record(self, now: float, concurrency: float, requests: float) -> None:
        """One per-second sample: average concurrency and request count of that second."""
        # The first sample after an activator stat nets it out (Knative's activator does).
        credit, self._poke_credit = self._poke_credit, 0.0
        self.collector.record(now, Stat(average_concurrent_requests=concurrency - credit,
                                        request_count=requests - credit))

    def record_activator_stat(self, now: float) -> None:
        """A request is held at zero: Knative's activator stat {concurrency 1, requests 1}.

        Knative's activator sends it on the first request it holds, so the autoscaler
        can decide before the next per-second sample; that sample counts the same
        request again, so it is netted out of it.
        """
        self.collector.record(now, Stat(average_concurrent_requests=1.0, request_count=1.0))
        self._poke_credit += 1.0

    def decide(self, now: float, ready: int) -> Decision:
        """Run the decider and the scaler; return the replica count to apply now."""
        result, self._state = decide(self.spec, self._state,
                                     self.collector.observed(now, self.spec.metric), ready, now)
        if result.valid:
            self._requested, self._ebc = result.desired_pods, result.excess_burst_capacity
        outcome = stz.scale(self.config, self._pa, self._requested, now,
                            proxy_for_s=self._proxy_for(now))
        if outcome.apply:
            self.replicas = outcome.scale
        self._pa = stz.next_pa(self.config, self._pa, outcome.scale, ready, now)
        return self._decision(result, now)

    def _proxy_for(self, now: float) -> float:
        # The gateway fronts every function, but proxy time counts from going Inactive:
        # the grace period then means "idle this long after the stable window", as
        # Knative behaves when the activator had left the path.
        return now - self._pa.since if self._pa.status == stz.INACTIVE else 0.0

    def _decision(self, result: ScaleResult, now: float) -> Decision:
        """The tick's outcome; an invalid tick keeps the last decision's values."""
        conc = self.collector.observed(now, "concurrency")
        return Decision(desired=self.replicas, requested=self._requested, panic=self._state.panic,
                        stable_concurrency=conc.stable if conc else 0.0,
                        panic_concurrency=conc.panic if conc else 0.0,
                        target=self.spec.target_value,
                        excess_burst_capacity=self._ebc,
                        valid=result.valid, state=self._pa.status)

    def _initial_ebc(self) -> int:
        """Knative's multiscaler before the first valid tick: initial * total - TBC."""
        tbc = self.spec.target_burst_capacity
        if tbc in (0, -1):
            return int(tbc)
        return int(self.settings.initial_scale * self.spec.total_value - tbc)
