"""InflightLimiter and call_with_deadline: non-blocking slots, honest about overrun calls."""

import threading

import pytest

from procs import wait_for
from scalezero.errors import UpstreamTimeout
from scalezero.runtime.limiter import InflightLimiter, call_with_deadline


def test_limit_refuses_the_excess_without_waiting():
    lim = InflightLimiter(2)
    assert [lim.try_acquire() for _ in range(3)] == [True, True, False]
    lim.release()
    assert lim.try_acquire() and lim.in_flight == 2


def test_zero_means_unlimited():
    lim = InflightLimiter(0)
    assert all(lim.try_acquire() for _ in range(1000))
    assert lim.in_flight == 1000


def test_release_without_acquire_is_a_bug():
    with pytest.raises(RuntimeError):
        InflightLimiter(1).release()


def test_concurrent_acquires_never_exceed_the_limit():
    lim, granted = InflightLimiter(3), []
    barrier = threading.Barrier(20)

    def grab():
        barrier.wait()
        granted.append(lim.try_acquire())

    threads = [threading.Thread(target=grab) for _ in range(20)]
    [t.start() for t in threads]
    [t.join(5) for t in threads]
    assert granted.count(True) == 3 and lim.in_flight == 3


def test_deadline_returns_result_and_releases():
    released = []
    assert call_with_deadline(lambda: 7, 1.0, lambda: released.append(1)) == 7
    assert call_with_deadline(lambda: 8, 0, lambda: released.append(1)) == 8
    assert released == [1, 1]


def test_deadline_passes_the_handler_exception_through():
    with pytest.raises(KeyError):
        call_with_deadline(lambda: {}["missing"], 1.0, lambda: None)


def test_overrun_raises_504_but_keeps_the_slot_until_the_call_returns():
    lim = InflightLimiter(1)
    assert lim.try_acquire()
    finish = threading.Event()
    with pytest.raises(UpstreamTimeout, match="within 0.05 s"):
        call_with_deadline(lambda: finish.wait(5), 0.05, lim.release)
    # The call still runs: its CPU/memory are still in use, so the slot stays taken.
    assert lim.in_flight == 1 and not lim.try_acquire()
    finish.set()
    wait_for(lambda: lim.in_flight == 0, 5, "the slot released when the call returned")
    assert lim.try_acquire()
