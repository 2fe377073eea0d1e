"""Per-user request limits: a sliding window of one minute, as Alpaca's 200 requests/min."""

import collections
import math
import time

__all__ = ["DEFAULT_RATE_LIMIT", "RateLimiter"]

DEFAULT_RATE_LIMIT = 200
"""Requests per minute per user (Alpaca's default)."""


class RateLimiter:
    """Parameters
    ----------
    per_minute : int
        Requests allowed in any 60 s window.
    clock : callable
        Seconds, monotonic.
    """

    WINDOW = 60.0

    def __init__(self, per_minute=DEFAULT_RATE_LIMIT, clock=time.monotonic):
        if per_minute < 1:
            raise ValueError("the rate limit must be at least 1 request per minute")
        self.per_minute, self.clock = per_minute, clock
        self.hits = collections.defaultdict(collections.deque)
        self.refused = 0

    def hit(self, user):
        """Count a request. Returns ``(allowed, remaining, retry_after_s)``."""
        now = self.clock()
        hits = self.hits[user]
        while hits and hits[0] <= now - self.WINDOW:
            hits.popleft()
        if len(hits) >= self.per_minute:
            self.refused += 1
            return False, 0, max(1, math.ceil(hits[0] + self.WINDOW - now))
        hits.append(now)
        return True, self.per_minute - len(hits), 0
