"""MoldUDP64 re-request server: answers unicast requests from a bounded history.

A request is the 20-byte MoldUDP64 header (session, first sequence number wanted, count
wanted). The answer is ordinary downstream packets, packed within ``max_payload`` and sent
unicast to the address and port the request came from.

Rules (each one logged when it applies):

* a request whose session is not the stream's, or is malformed, is ignored;
* a request below sequence 1 is ignored (as Nassau's server does);
* data no longer held: the answer starts at the oldest message held, so its first packet's
  sequence number is above the one asked for and the requester learns at once that the
  messages in between are gone (:class:`~tickwire.marketdata.subscriber.Subscriber` then recovers
  from a snapshot). A request entirely beyond the stream is answered with a heartbeat
  carrying the next sequence number. Nothing is left unanswered except by the rate limit;
* rate limit: a token bucket per requester address, in packets. An answer larger than the
  tokens held is cut to them (the requester asks again for the rest); a requester with no
  token left gets nothing until it has (at most one log line per second per requester).
"""

import asyncio
import logging
import time

from tickwire.marketdata.history import MessageHistory
from tickwire.protocol import moldudp64

__all__ = ["RerequestServer"]

log = logging.getLogger(__name__)


class _Bucket:
    __slots__ = ("tokens", "stamp", "logged")

    def __init__(self, tokens, stamp):
        self.tokens, self.stamp, self.logged = tokens, stamp, 0.0


class RerequestServer(asyncio.DatagramProtocol):
    """Serves MoldUDP64 retransmissions on a unicast UDP port.

    Parameters
    ----------
    session : str
        The stream's session name; requests naming another are ignored.
    history : MessageHistory, optional
        Where the feed is kept; by default ``MessageHistory(max_messages, max_age)``. Feed it
        with :meth:`store` (a publisher listener).
    host, port : str, int
        Address to listen on (port 0: any free port, see :attr:`address`).
    max_payload : int
        Largest UDP payload of an answer.
    rate : float
        Packets per second per requester.
    burst : int
        Packets a requester may take at once.
    max_messages, max_age : int, float
        Bounds of the default history.
    clock : callable
        Monotonic seconds, for the rate limit.

    Members
    -------
    requests, answered, limited, ignored, packets_sent : int
    """

    def __init__(self, session, history=None, host="127.0.0.1", port=0, max_payload=1400,
                 rate=2000.0, burst=400, max_messages=1_000_000, max_age=60.0,
                 clock=time.monotonic):
        self.session = session
        self.history = MessageHistory(max_messages, max_age) if history is None else history
        self.host, self.port = host, port
        self.max_payload = max_payload
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._buckets = {}
        self._transport = None
        self._session_bytes = session.encode("ascii").ljust(10, b" ")
        self.requests = self.answered = self.limited = self.ignored = self.packets_sent = 0

    @property
    def store(self):
        """The history's ``store(packet, timestamp_ns)``: give it every feed packet."""
        return self.history.store

    @property
    def address(self):
        """``(host, port)`` the server listens on (None when it does not)."""
        if self._transport is None:
            return None
        return self._transport.get_extra_info("sockname")[:2]

    async def start(self):
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port))
        return self

    def connection_made(self, transport):
        self._transport = transport

    def close(self):
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def datagram_received(self, data, addr):
        self.requests += 1
        try:
            request = moldudp64.decode_request(data)
        except ValueError as exc:
            self.ignored += 1
            log.warning("re-request from %s:%s ignored: %s", *addr[:2], exc)
            return
        if data[:10] != self._session_bytes:
            self.ignored += 1
            log.warning("re-request from %s:%s for session %r ignored (serving %r)",
                        *addr[:2], request.session, self.session)
            return
        if request.sequence < 1:
            self.ignored += 1
            log.warning("re-request from %s:%s for sequence 0 ignored", *addr[:2])
            return
        for packet in self.answer(request.sequence, request.count, addr):
            self._transport.sendto(packet, addr)
            self.packets_sent += 1

    def _tokens(self, addr):
        now = self._clock()
        bucket = self._buckets.get(addr)
        if bucket is None:
            if len(self._buckets) > 10_000:
                self._buckets.clear()
            bucket = self._buckets[addr] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        return bucket, now

    def answer(self, sequence, count, addr=("", 0)):
        """Packets answering a request from ``addr`` (rate limit applied), as a list."""
        bucket, now = self._tokens(addr)
        if bucket.tokens < 1:
            self.limited += 1
            if now - bucket.logged >= 1.0:
                bucket.logged = now
                log.warning("re-request from %s:%s rate limited (%g packets/s)", *addr[:2],
                            self.rate)
            return []
        first, messages = self.history.get(sequence, count)
        if first > sequence and not messages:
            first, messages = self.history.get(first, count)
        if first > sequence:
            log.info("re-request from %s:%s for %d+%d: messages before %d no longer held",
                     *addr[:2], sequence, count, first)
        self.answered += 1
        if not messages:
            bucket.tokens -= 1
            return [moldudp64.encode_heartbeat(self.session, self.history.next_sequence)]
        packetizer = moldudp64.Packetizer(self.session, self.max_payload, first)
        packets, budget = [], int(bucket.tokens)
        for message in messages:
            packets += packetizer.add(message)
            if len(packets) >= budget:
                break
        else:
            packets += packetizer.flush()
        packets = packets[:budget]
        bucket.tokens -= len(packets)
        if len(packets) == budget and budget < self.burst:
            log.info("re-request from %s:%s cut to %d packets by the rate limit", *addr[:2],
                     budget)
        return packets
