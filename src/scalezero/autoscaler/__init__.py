"""Knative's KPA autoscaler, reimplemented as pure parts.

``FunctionAutoscaler`` composes the collector (window averages), the decider
(``decider.decide``) and the scaler (bounds and scale to zero) for one function;
the loop that ticks every 2 s lives in ``loop.py`` and only reads the clock.
"""

from scalezero.autoscaler.kpa import Decision, FunctionAutoscaler

__all__ = ["Decision", "FunctionAutoscaler"]
