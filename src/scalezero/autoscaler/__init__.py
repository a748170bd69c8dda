"""Knative's KPA autoscaler, reimplemented as pure parts.

``FunctionAutoscaler`` composes the collector (window averages), the decider
(``decider.decide``) and the scaler (bounds and scale to zero) for one function;
the loop that ticks every 2 s and drives the backends is the gateway's
(``scalezero.gateway.scaling_loop``); only it reads the clock.
"""

from scalezero.autoscaler.kpa import Decision, FunctionAutoscaler

__all__ = ["Decision", "FunctionAutoscaler"]
