"""``tickwire feed watch`` and ``tickwire feed dump``: a live book, and the feed as JSON lines.

:func:`add_watch_arguments` and :func:`add_dump_arguments` declare the options on an
argparse parser; :func:`feed_watch` and :func:`feed_dump` take the parsed namespace.
"""

import asyncio
import json
import sys
import time

from tickwire.core.money import format_price
from tickwire.marketdata.subscriber import PacketLoss, Subscriber
from tickwire.protocol import itch, moldudp64, pcap
from tickwire.protocol.feed import FeedAddress

__all__ = ["add_watch_arguments", "add_dump_arguments", "feed_watch", "feed_dump",
           "message_json", "pcap_messages"]


def _address(text):
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def _add_feed_arguments(p):
    p.add_argument("--group", default=FeedAddress.group, help="multicast group")
    p.add_argument("--port", type=int, default=FeedAddress.port, help="UDP port")
    p.add_argument("--interface", default="127.0.0.1",
                   help="address of the interface to join on")
    p.add_argument("--rerequest", type=_address, metavar="HOST:PORT",
                   help="re-request server, to fill gaps")
    p.add_argument("--snapshot", type=_address, metavar="HOST:PORT",
                   help="snapshot server, to join mid-session (and recover what the re-request "
                        "server no longer holds)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--loss", type=float, default=0.0, metavar="FRACTION",
                   help="drop this share of multicast packets on receipt, to try recovery "
                        "(default 0)")
    p.add_argument("--loss-seed", type=int, default=1, help="random seed of --loss")


def add_watch_arguments(p):
    """Options of ``tickwire feed watch``."""
    p.add_argument("symbol", help="stock symbol to show, e.g. AAPL")
    _add_feed_arguments(p)
    p.add_argument("--depth", type=int, default=5, help="L2 levels per side")
    p.add_argument("--refresh", type=float, default=0.5, help="seconds between redraws")


def add_dump_arguments(p):
    """Options of ``tickwire feed dump``."""
    _add_feed_arguments(p)
    p.add_argument("--pcap", metavar="FILE",
                   help="read a capture instead of the live group (UDP to --port only)")
    p.add_argument("-o", "--output", default="-", help="JSON lines file ('-': stdout)")
    p.add_argument("--count", type=int, help="stop after this many messages")
    p.epilog = ("With --snapshot the dump starts with the snapshot's messages (\"seq\": null, "
                "\"snapshot\": true), then the feed from the snapshot's sequence number.")


def message_json(sequence, raw):
    """One decoded ITCH message as a JSON-ready dict: ``seq``, ``type``, then its fields
    (a message of a snapshot has ``seq`` None and ``snapshot`` true)."""
    record = itch.decode(raw)
    out = {"seq": sequence, "type": raw[:1].decode("ascii")}
    if sequence is None:
        out["snapshot"] = True
    out.update(record._asdict())
    return out


def pcap_messages(path, port=None):
    """``(sequence, message)`` of every MoldUDP64 message block in a pcap, in capture order."""
    for payload in pcap.udp_payloads(path, port):
        packet = moldudp64.decode_packet(payload)
        if packet.is_heartbeat or packet.is_end_of_session:
            continue
        for i, message in enumerate(packet.messages):
            yield packet.sequence + i, message


def render_book(sub, symbol, depth):
    """The text screen of ``feed watch``."""
    book = sub.book
    locate = book.locate_of(symbol)
    lines = [f"{symbol}   seq {sub.expected - 1}   packets {sub.packets}   "
             f"requests {sub.requests}" + ("   (joining)" if not sub.synced.is_set() else "")]
    if locate is None:
        return "\n".join(lines + ["(symbol not seen yet)"])
    top = book.top(locate)
    last = top["last"]
    lines.append(f"last {format_price(last[0]) + ' x ' + str(last[1]) if last else '-'}"
                 f"   volume {book.book.volume[locate]}"
                 + ("   HALTED" if book.book.halted.get(locate) else ""))
    lines.append(f"{'orders':>7} {'shares':>9} {'bid':>12} | {'ask':<12} {'shares':<9} "
                 f"{'orders':<7}")
    bids = book.levels(locate, "B", depth)
    asks = book.levels(locate, "S", depth)
    for i in range(max(len(bids), len(asks), 1)):
        b = bids[i] if i < len(bids) else None
        a = asks[i] if i < len(asks) else None
        left = f"{b[2]:>7} {b[1]:>9} {format_price(b[0]):>12}" if b else " " * 30
        right = f"{format_price(a[0]):<12} {a[1]:<9} {a[2]:<7}" if a else ""
        lines.append(f"{left} | {right}")
    return "\n".join(lines)


class JoinError(Exception):
    """The multicast group cannot be joined."""


async def _join(args, **kw):
    """A started Subscriber from the common options (raises JoinError)."""
    drop = PacketLoss(args.loss, args.loss_seed) if args.loss else None
    sub = Subscriber(args.group, args.port, args.interface, rerequest=args.rerequest,
                     snapshot=args.snapshot, drop=drop, **kw)
    try:
        return await sub.start()
    except OSError as exc:
        await sub.close()
        raise JoinError(f"cannot join {args.group}:{args.port} on interface {args.interface}: "
                        f"{exc.strerror or exc}") from exc


def _run(coro):
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        return 130
    except JoinError as exc:
        print(f"tickwire feed: error: {exc}", file=sys.stderr)
        return 2


async def _watch(args, out):
    sub = await _join(args)
    try:
        start = time.monotonic()
        while args.duration is None or time.monotonic() - start < args.duration:
            out.write("\x1b[H\x1b[2J" if out.isatty() else "\n")
            out.write(render_book(sub, args.symbol, args.depth) + "\n")
            out.flush()
            if sub.complete.is_set():
                out.write("end of session\n")
                break
            await asyncio.sleep(args.refresh)
    finally:
        await sub.close()
    return 0


def feed_watch(args, out=None):
    """``tickwire feed watch SYMBOL``: a live text book of one symbol, redrawn."""
    return _run(_watch(args, out or sys.stdout))


async def _dump_live(args, write):
    written = [0]
    done = asyncio.Event()

    def on_message(sequence, raw):
        write(sequence, raw)
        written[0] += 1
        if args.count is not None and written[0] >= args.count:
            done.set()

    def on_snapshot(messages, sequence):
        for raw in messages:
            write(None, raw)

    sub = await _join(args, on_message=on_message, on_snapshot=on_snapshot)
    try:
        waits = [asyncio.ensure_future(done.wait()), asyncio.ensure_future(sub.complete.wait())]
        await asyncio.wait(waits, timeout=args.duration, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
    finally:
        await sub.close()
    return 0


def feed_dump(args):
    """``tickwire feed dump``: decoded feed messages as JSON lines, live or from a pcap."""
    # Live, a line is written as soon as its message is applied (for tail -f, jq, ...).
    out = sys.stdout if args.output == "-" else \
        open(args.output, "w", buffering=-1 if args.pcap else 1)
    try:
        def write(sequence, raw):
            out.write(json.dumps(message_json(sequence, raw)) + "\n")
            if not args.pcap and out is sys.stdout:
                out.flush()

        if args.pcap:
            n = 0
            for sequence, raw in pcap_messages(args.pcap, args.port):
                if args.count is not None and n >= args.count:
                    break
                write(sequence, raw)
                n += 1
        else:
            return _run(_dump_live(args, write))
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
