"""The gateway's latency buckets: histogram_quantile's p99 over them lands within 10 % of the exact p99."""

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from scalezero.gateway.metrics import LATENCY_BUCKETS, geometric_buckets
from scalezero.loadgen.timeline import histogram_quantile

OLD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)  # before issue 14


def p99_from(buckets, samples) -> float:
    registry = CollectorRegistry()
    h = Histogram("lat_seconds", "test", buckets=buckets, registry=registry)
    for s in samples:
        h.observe(s)
    counts = {float(s.labels["le"]): s.value for m in registry.collect() for s in m.samples
              if s.name == "lat_seconds_bucket"}
    return histogram_quantile(0.99, counts)


@pytest.mark.parametrize("median_s,sigma", [(0.003, 0.3), (0.03, 0.5), (0.12, 0.2), (0.5, 0.8), (4.0, 0.4)])
def test_p99_within_ten_percent_of_the_exact_one(median_s, sigma):
    samples = np.random.default_rng(7).lognormal(np.log(median_s), sigma, 5000)
    exact = float(np.quantile(samples, 0.99))
    assert abs(p99_from(LATENCY_BUCKETS, samples) / exact - 1) <= 0.10


def test_the_old_buckets_were_not_fine_enough():
    samples = np.random.default_rng(7).lognormal(np.log(0.12), 0.2, 5000)  # yolo-detect-like
    exact = float(np.quantile(samples, 0.99))
    assert abs(p99_from(OLD_BUCKETS, samples) / exact - 1) > 0.10  # so the test above can fail


def test_geometric_buckets_are_ten_percent_apart_and_checked():
    ratios = np.array(LATENCY_BUCKETS[1:]) / np.array(LATENCY_BUCKETS[:-1])
    assert LATENCY_BUCKETS[0] == 0.001 and LATENCY_BUCKETS[-1] >= 60 and np.all(ratios <= 1.101)  # 4-digit rounding
    with pytest.raises(ValueError, match="factor = 1"):
        geometric_buckets(0.001, 1, 1)
