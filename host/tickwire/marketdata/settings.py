"""Where one venue's feed goes: the settings of its multicast, re-request, snapshot and WebSocket.

The same settings come from three places, later ones winning: the defaults of
:class:`FeedSettings` (one machine, no root: multicast on loopback), the venue config's
``[feed]`` table (:meth:`FeedSettings.from_dict`), and ``tickwire serve``'s options. Every
port can be ``"off"`` (or ``false`` in a config file), and ``0`` picks a free port; the
ports chosen are read back from :class:`~tickwire.marketdata.service.MarketDataService`. So
several venues on one machine each get their own group and ports::

    [feed]
    group = "239.255.70.2"
    port = 0                      # any free UDP port
    rerequest_port = 0
    snapshot_port = 0
    ws_port = "off"
    retransmit_messages = 1000000
    retransmit_seconds = "off"    # keep what the count allows, however old
"""

import ipaddress
from dataclasses import dataclass, fields, replace

from tickwire.protocol.feed import DEFAULT_SESSION, FeedAddress

__all__ = ["OFF_WORDS", "FeedSettings", "add_feed_arguments", "settings_from_args"]

#: Values that turn a port (or the age limit) off, in a config file or on the command line.
OFF_WORDS = ("off", "none", "no")


@dataclass(frozen=True)
class FeedSettings:
    """One venue's feed: addresses, TTL, retransmission buffer limits, heartbeat, session.

    Parameters
    ----------
    group : str
        IPv4 multicast group of the MoldUDP64 feed.
    port : int or None
        Its UDP port (0: a free one; ``None``: no multicast).
    interface : str
        Address of the interface the multicast leaves by (``127.0.0.1``: loopback).
    ttl : int
        IP multicast time to live (1: this subnet; 0: this host).
    host : str
        Address the re-request, snapshot and WebSocket servers listen on.
    rerequest_port : int or None
        MoldUDP64 re-request server, unicast UDP.
    snapshot_port : int or None
        GLIMPSE-like snapshot server, SoupBinTCP.
    ws_port : int or None
        Retail WebSocket L1/L2 feed.
    retransmit_messages : int
        Messages the re-request server keeps at most (memory: about 80 bytes each).
    retransmit_seconds : float or None
        Messages older than this are dropped even when the count would keep them
        (``None``: no age limit).
    heartbeat : float
        Idle seconds before a MoldUDP64 heartbeat.
    session : str
        MoldUDP64 session name (10 ASCII characters at most).
    ws_rate : float
        WebSocket updates per second per symbol per client, at most.
    """
    group: str = FeedAddress.group
    port: int | None = FeedAddress.port
    interface: str = "127.0.0.1"
    ttl: int = 1
    host: str = "127.0.0.1"
    rerequest_port: int | None = FeedAddress.port + 1
    snapshot_port: int | None = FeedAddress.port + 2
    ws_port: int | None = FeedAddress.port + 3
    retransmit_messages: int = 1_000_000
    retransmit_seconds: float | None = None
    heartbeat: float = 1.0
    session: str = DEFAULT_SESSION
    ws_rate: float = 10.0

    def __post_init__(self):
        try:
            group = ipaddress.IPv4Address(self.group)
        except ValueError:
            raise ValueError(f"feed group {self.group!r} is not an IPv4 address") from None
        if not group.is_multicast:
            raise ValueError(f"feed group {self.group} is not a multicast address "
                             "(224.0.0.0 to 239.255.255.255)")
        for name in ("interface", "host"):
            try:
                ipaddress.IPv4Address(getattr(self, name))
            except ValueError:
                raise ValueError(f"feed {name} {getattr(self, name)!r} is not an IPv4 "
                                 "address") from None
        for name in ("port", "rerequest_port", "snapshot_port", "ws_port"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or not 0 <= value <= 65535):
                raise ValueError(f"feed {name} {value!r} is not a port (0 to 65535, or off)")
        if not isinstance(self.ttl, int) or not 0 <= self.ttl <= 255:
            raise ValueError(f"feed ttl {self.ttl!r} is not 0 to 255")
        if not isinstance(self.retransmit_messages, int) or self.retransmit_messages < 1:
            raise ValueError(f"feed retransmit_messages {self.retransmit_messages!r} must be "
                             "a positive integer")
        if self.retransmit_seconds is not None and not self.retransmit_seconds > 0:
            raise ValueError(f"feed retransmit_seconds {self.retransmit_seconds!r} must be "
                             "positive (or off)")
        if not self.heartbeat > 0 or not self.ws_rate > 0:
            raise ValueError("feed heartbeat and ws_rate must be positive")
        if not (1 <= len(self.session) <= 10 and self.session.isascii()):
            raise ValueError(f"feed session {self.session!r} must be 1 to 10 ASCII characters")

    @classmethod
    def from_dict(cls, table, base=None):
        """Settings from a config's ``[feed]`` table (or parsed options) over ``base``.

        Ports and ``retransmit_seconds`` take ``"off"`` or ``false`` to turn them off.
        Unknown keys are an error, so a misspelt setting is not silently ignored.
        """
        base = cls() if base is None else base
        names = {f.name: f for f in fields(cls)}
        values = {}
        for key, value in table.items():
            if key not in names:
                raise ValueError(f"unknown feed setting {key!r} (known: "
                                 f"{', '.join(sorted(names))})")
            if value is False or (isinstance(value, str) and value.lower() in OFF_WORDS):
                if key not in _OPTIONAL:
                    raise ValueError(f"feed setting {key} cannot be turned off")
                value = None
            values[key] = value
        return replace(base, **values)


_OPTIONAL = ("port", "rerequest_port", "snapshot_port", "ws_port", "retransmit_seconds")


def _port(text):
    if text.lower() in OFF_WORDS:
        return "off"
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(text)
    return port


_port.__name__ = "port"         # argparse names the type in its error message


def _seconds(text):
    return "off" if text.lower() in OFF_WORDS else float(text)


_seconds.__name__ = "seconds"

_OPTIONS = (
    ("--feed-group", "group", str, "GROUP", "IPv4 multicast group of the MoldUDP64 feed"),
    ("--feed-port", "port", _port, "PORT", "its UDP port (0: any free one; off: no multicast)"),
    ("--feed-interface", "interface", str, "ADDR",
     "address of the interface the multicast leaves by (127.0.0.1: loopback, no root needed)"),
    ("--feed-ttl", "ttl", int, "N", "multicast time to live (1: this subnet; 0: this host)"),
    ("--rerequest-port", "rerequest_port", _port, "PORT",
     "MoldUDP64 re-request server, unicast UDP (0: any free one; off)"),
    ("--snapshot-port", "snapshot_port", _port, "PORT",
     "GLIMPSE-like snapshot server for late joiners, SoupBinTCP (0: any free one; off)"),
    ("--ws-port", "ws_port", _port, "PORT",
     "retail WebSocket L1/L2 feed (0: any free one; off)"),
    ("--retransmit-messages", "retransmit_messages", int, "N",
     "messages the re-request server keeps at most"),
    ("--retransmit-seconds", "retransmit_seconds", _seconds, "S",
     "re-request server drops messages older than this (off: only the count limits)"),
)


def add_feed_arguments(parser):
    """The feed options of ``tickwire serve``, in their own argument group."""
    defaults = FeedSettings()
    group = parser.add_argument_group(
        "market data", "where the feed goes; each option overrides the config's [feed] table")
    for flag, name, kind, metavar, text in _OPTIONS:
        default = getattr(defaults, name)
        group.add_argument(flag, dest=f"feed_{name}", type=kind, metavar=metavar,
                           help=f"{text} (default: {'off' if default is None else default})")
    return parser


def settings_from_args(args, table=None, host=None):
    """:class:`FeedSettings` from the config's ``[feed]`` table, then the options given.

    ``host`` (the venue's listen address) is where the servers listen unless the table says.
    """
    table = dict(table or {})
    if host is not None:
        table.setdefault("host", host)
    for _, name, _, _, _ in _OPTIONS:
        value = getattr(args, f"feed_{name}", None)
        if value is not None:
            table[name] = value
    return FeedSettings.from_dict(table)
