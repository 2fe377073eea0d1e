"""The re-request server's memory: the most recent feed messages, bounded by age and count.

It keeps messages, not packets: a retransmission is packed anew within the payload limit,
so its boundaries need not match the original packets'.
"""

import struct
import time
from collections import deque

__all__ = ["MessageHistory"]

_HEADER = struct.Struct(">10sQH")
_BLOCK = struct.Struct(">H")


class MessageHistory:
    """Bounded store of sequenced messages, oldest dropped first.

    Parameters
    ----------
    max_messages : int
        Messages kept at most.
    max_age : float
        Seconds a message is kept at least while the count allows (protocols.md asks for
        60 s or more); older ones are dropped as new ones arrive.
    clock : callable
        Monotonic seconds (``time.monotonic``); replaceable in tests.

    Members
    -------
    oldest : int
        Sequence number of the oldest message held (``next_sequence`` when empty).
    next_sequence : int
        Sequence number the next stored message must have.
    """

    def __init__(self, max_messages=1_000_000, max_age=60.0, clock=time.monotonic):
        self.max_messages = max_messages
        self.max_age = max_age
        self._clock = clock
        self._messages = []
        self._head = 0                  # index in _messages of `oldest`
        self._stamps = deque()          # (time, first sequence after the packet)
        self.oldest = 1
        self.next_sequence = 1

    def __len__(self):
        return self.next_sequence - self.oldest

    def store(self, packet, timestamp_ns=None):
        """Keep the messages of one downstream MoldUDP64 packet (heartbeats are ignored).

        Usable as a listener of :class:`~tickwire.marketdata.publisher.MulticastPublisher` and as a
        ``FeedPublisher`` sink. A packet that does not start at :attr:`next_sequence` (a gap
        upstream) restarts the history from it.
        """
        _, sequence, count = _HEADER.unpack_from(packet)
        if count == 0 or count == 0xFFFF:
            return
        if sequence != self.next_sequence:
            self._messages, self._head, self._stamps = [], 0, deque()
            self.oldest = sequence
        offset, append = _HEADER.size, self._messages.append
        for _ in range(count):
            (length,) = _BLOCK.unpack_from(packet, offset)
            append(packet[offset + 2:offset + 2 + length])
            offset += 2 + length
        self.next_sequence = sequence + count
        now = self._clock()
        self._stamps.append((now, self.next_sequence))
        self._evict(now)

    def _evict(self, now):
        limit = self.next_sequence - self.max_messages
        stamps = self._stamps
        while stamps and now - stamps[0][0] > self.max_age:
            limit = max(limit, stamps.popleft()[1])
        while stamps and stamps[0][1] <= limit:
            stamps.popleft()
        if limit > self.oldest:
            self._head += limit - self.oldest
            self.oldest = limit
            if self._head > 4096 and self._head * 2 > len(self._messages):
                del self._messages[:self._head]
                self._head = 0

    def get(self, sequence, count):
        """Messages ``sequence``, ``sequence + 1``, ... that are held, at most ``count``.

        Returns
        -------
        first : int
            Sequence number of the first message returned: ``max(sequence, oldest)``.
        messages : list of bytes
            Empty if nothing from ``first`` on is held.
        """
        self._evict(self._clock())
        first = max(sequence, self.oldest)
        end = min(sequence + count, self.next_sequence)
        if end <= first:
            return first, []
        start = self._head + first - self.oldest
        return first, self._messages[start:start + end - first]
