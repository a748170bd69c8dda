"""The one retry policy of the async queue and event delivery."""

import pytest

from scalezero.gateway import asyncq, delivery, retry


@pytest.mark.parametrize("status, again", [
    (0, True), (200, False), (400, False), (404, False), (429, True), (500, True),
    (502, True), (503, True), (504, True),
])
def test_retryable_statuses(status, again):
    assert retry.retryable(status) is again


def test_both_users_share_the_policy():
    assert asyncq.retryable is retry.retryable and delivery.retryable is retry.retryable


def test_backoff_doubles_jitters_and_is_capped():
    delays = [retry.backoff_s(1.0, 8.0, n) for n in range(1, 7)]
    assert 0.8 <= delays[0] <= 1.0 and 1.6 <= delays[1] <= 2.0 and 3.2 <= delays[2] <= 4.0
    assert all(d <= 8.0 for d in delays)


def test_retry_after_is_honoured_up_to_the_longest_wait():
    assert retry.backoff_s(0.1, 8.0, 1, retry_after_s=5.0) == 5.0
    assert retry.backoff_s(0.1, 8.0, 1, retry_after_s=60.0) == 8.0


@pytest.mark.parametrize("headers, seconds", [
    ({"Retry-After": "3"}, 3.0), ([("retry-after", "1.5")], 1.5), ({}, 0.0),
    ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0), ({"Retry-After": "-2"}, 0.0),
])
def test_retry_after_header(headers, seconds):
    assert retry.retry_after_s(headers) == seconds
