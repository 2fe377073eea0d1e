"""A day's feed recorded: the venue's MoldUDP64 packets into a pcap and a book, and on to
the network."""

from tickwire.marketdata.book import SubscriberBook
from tickwire.marketdata.feed import FeedPublisher
from tickwire.marketdata.feed_book import FeedBook
from tickwire.protocol import pcap
from tickwire.protocol.feed import DEFAULT_SESSION, FeedAddress

__all__ = ["FeedRecorder"]


class FeedRecorder:
    """A day's feed: events → ITCH → MoldUDP64 (``publisher``), each packet framed for the
    multicast group into a pcap, and a :class:`~tickwire.book.FeedBook` built from the feed.

    The book reads each ITCH message's bytes as a subscriber does (through a
    :class:`~tickwire.marketdata.book.SubscriberBook`, the subscribers' own decoder), so it
    checks the feed as published: an execution or cancel of an order the feed never added
    raises.

    Parameters
    ----------
    pcap_file : binary file object, optional
    session : str
        MoldUDP64 session name.
    sinks : iterable of callable
        Also given every packet as ``sink(packet, timestamp_ns)`` (e.g. the venue's
        :class:`~tickwire.marketdata.service.MarketDataService`).
    """

    def __init__(self, pcap_file=None, session=DEFAULT_SESSION, sinks=()):
        self.book = FeedBook()
        self.pcap = pcap.PcapWriter(pcap_file) if pcap_file is not None else None
        self.publisher = FeedPublisher(self._packet, session=session,
                                       on_message=SubscriberBook(self.book).apply)
        self.sinks = list(sinks)
        self.packets = 0

    def _packet(self, payload, timestamp):
        self.packets += 1
        if self.pcap is not None:
            self.pcap.write(FeedAddress.frame(payload), timestamp)
        for sink in self.sinks:
            sink(payload, timestamp)
