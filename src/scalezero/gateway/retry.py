"""When to try a call again and how long to wait first: one policy for the async
queue (``asyncq``) and event delivery (``delivery``).

Retried: 429, every 5xx (a 504 is a timeout) and 0, no response at all (refused,
reset). Waits double from a first delay up to a longest one, jittered down by up to
20 % so that many calls failing together do not retry together, and never shorter
than the ``Retry-After`` the answer asked for (up to the longest wait).
"""

import random
from typing import Iterable

TOO_MANY_REQUESTS = 429


def retryable(status: int) -> bool:
    """Whether a call that ended with ``status`` (0: no response) is worth another try."""
    return status == 0 or status == TOO_MANY_REQUESTS or status >= 500


def backoff_s(first_s: float, max_s: float, attempts: int, retry_after_s: float = 0.0) -> float:
    """The wait after ``attempts`` tries (1 = after the first one)."""
    base = min(max_s, first_s * 2 ** max(0, attempts - 1))
    return min(max_s, max(retry_after_s, base * random.uniform(0.8, 1.0)))


def retry_after_s(headers: Iterable[tuple[str, str]] | dict) -> float:
    """Seconds of a ``Retry-After: <seconds>`` header; 0.0 when absent or not a number."""
    items = headers.items() if hasattr(headers, "items") else headers
    for key, value in items:
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return 0.0
    return 0.0
