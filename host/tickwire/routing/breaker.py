"""A circuit breaker around one venue connection (closed → open → half-open).

Closed: requests pass; ``threshold`` failures in a row open it. Open: requests are refused
at once (the router skips the venue rather than wait on it) until ``reset_after`` seconds
have passed; then half-open: one request is let through, and its success closes the breaker,
its failure opens it again. A lost connection opens it at once (:meth:`trip`).
"""

import time

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Parameters
    ----------
    threshold : int
        Consecutive failures that open the breaker.
    reset_after : float
        Seconds the breaker stays open before a trial request.
    clock : callable
        Seconds, monotonic (tests pass their own).
    """

    def __init__(self, threshold=3, reset_after=5.0, clock=time.monotonic):
        self.threshold, self.reset_after, self.clock = threshold, reset_after, clock
        self.failures = 0
        self.opened_at = None
        self.trial = False
        self.trips = 0

    @property
    def state(self):
        if self.opened_at is None:
            return CLOSED
        if self.clock() - self.opened_at >= self.reset_after:
            return HALF_OPEN
        return OPEN

    def allow(self):
        """Whether a request may go now (in half-open, only the one trial)."""
        state = self.state
        if state == CLOSED:
            return True
        if state == HALF_OPEN and not self.trial:
            self.trial = True
            return True
        return False

    def available(self):
        """Whether a request would be allowed, without taking the half-open trial."""
        state = self.state
        return state == CLOSED or (state == HALF_OPEN and not self.trial)

    def success(self):
        self.failures, self.opened_at, self.trial = 0, None, False

    def failure(self):
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.threshold:
            self.trip()

    def trip(self):
        """Open now (a lost connection)."""
        if self.opened_at is None:
            self.trips += 1
        self.opened_at, self.trial = self.clock(), False
