"""A circuit breaker for the app's Redis: pure state, no I/O, the clock injected.

After `failures_to_open` consecutive failures the breaker opens: callers skip Redis (the cache
and the limiter fail open, sessions answer 503 at once) instead of each waiting out a timeout.
Once `cooldown_s` has passed, one caller is let through as a probe (half-open); any success
closes the breaker, a failure opens it for another cool-down. Results of calls that started
before a transition still count: a late success is as good a sign of life as the probe's, a
late failure as bad. `failures_to_open=0` turns the breaker off (it never opens).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"


class CircuitBreaker:
    """Closed, open for a cool-down after N consecutive failures, then half-open for one probe."""

    def __init__(
        self,
        failures_to_open: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures_to_open = failures_to_open
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.state = CLOSED
        self.consecutive_failures = 0
        self.opens = 0  # times it opened, for /stats
        self._opened_at = 0.0
        self._probing = False

    def allow(self) -> bool:
        """Whether a caller may use Redis now; after the cool-down the first caller is the probe."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self._clock() - self._opened_at >= self.cooldown_s:
            self.state = HALF_OPEN
            self._probing = True
            return True
        # Half-open: one probe at a time. One that ended without a verdict frees the slot.
        if self.state == HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def record_success(self) -> bool:
        """Redis answered: close. True when this closed an open or half-open breaker."""
        was_closed = self.state == CLOSED
        self.state = CLOSED
        self.consecutive_failures = 0
        self._probing = False
        return not was_closed

    def record_failure(self) -> bool:
        """Redis failed (unreachable, timed out, bad credentials). True when this opened it."""
        self.consecutive_failures += 1
        if self.failures_to_open <= 0 or self.state == OPEN:
            return False  # off; or already open: a late failure does not extend the cool-down
        if self.state == HALF_OPEN or self.consecutive_failures >= self.failures_to_open:
            self.state = OPEN
            self._opened_at = self._clock()
            self._probing = False
            self.opens += 1
            return True
        return False

    def release(self) -> None:
        """The probe ended without a verdict on Redis (cancelled, pool busy): let another try."""
        self._probing = False

    def retry_in_s(self) -> float:
        """Seconds until the next probe may go out; 0 when closed, half-open or cooled down."""
        if self.state != OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown_s - self._clock())

    def snapshot(self) -> dict[str, Any]:
        """State for /healthz: JSON-ready."""
        return {
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "failures_to_open": self.failures_to_open,
            "cooldown_s": self.cooldown_s,
            "retry_in_s": round(self.retry_in_s(), 3),
            "opens": self.opens,
        }
