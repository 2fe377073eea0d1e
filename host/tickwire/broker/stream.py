"""Order updates per user, numbered from 1, kept for replay.

Every event is ``{"seq": n, "event": ..., "order": {...}}``; ``seq`` counts from 1 per user.
A listener subscribes from a sequence number: it is first handed every kept event from that
number on, then the live ones. Each listener has a bounded queue; one that falls
``max_queue`` events behind (a client that does not read its socket) is dropped, and its
``overflowed`` flag set, so it cannot hold the broker's memory or slow anyone else.
"""

import asyncio

__all__ = ["Listener", "OrderStream"]


class Listener:
    """One subscriber's queue of events."""

    def __init__(self, max_queue):
        self.queue = asyncio.Queue(max_queue)
        self.overflowed = False
        self.gone = asyncio.Event()

    def push(self, event):
        """Queue one event; False (and ``overflowed``) if the queue is full."""
        if self.overflowed:
            return False
        try:
            self.queue.put_nowait(event)
            return True
        except asyncio.QueueFull:
            self.overflowed = True
            self.gone.set()
            return False


class OrderStream:
    """Parameters
    ----------
    format_order : callable
        ``format_order(order)`` → the JSON-ready order of an event (taken when it happens).
    max_queue : int
        Events a listener may have unread before it is dropped.
    """

    def __init__(self, format_order, max_queue=10_000):
        self.format_order = format_order
        self.max_queue = max_queue
        self.events = {}            # user -> [event]; event seq n is at index n - 1
        self.listeners = {}         # user -> [Listener]
        self.dropped = 0

    def publish(self, user, kind, order):
        """Record an event for ``user`` and hand it to the user's listeners."""
        log = self.events.setdefault(user, [])
        event = {"seq": len(log) + 1, "event": kind, "order": self.format_order(order)}
        log.append(event)
        listeners = self.listeners.get(user, [])
        for listener in list(listeners):
            if not listener.push(event):
                listeners.remove(listener)
                self.dropped += 1
        return event

    def subscribe(self, user, from_seq=None, max_queue=None):
        """A listener for ``user``'s events with ``seq >= from_seq`` (None: live only).

        The replayed events count towards the queue bound too.
        """
        listener = Listener(max_queue or self.max_queue)
        if from_seq is not None:
            for event in self.events.get(user, [])[max(from_seq, 1) - 1:]:
                if not listener.push(event):
                    self.dropped += 1
                    return listener
        self.listeners.setdefault(user, []).append(listener)
        return listener

    def unsubscribe(self, user, listener):
        listeners = self.listeners.get(user, [])
        if listener in listeners:
            listeners.remove(listener)

    def last_seq(self, user):
        return len(self.events.get(user, []))
