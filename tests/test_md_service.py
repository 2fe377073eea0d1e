"""The venue publishes its feed: settings, several venues on one machine, restarts, bad input."""

import argparse
import asyncio
import json
import socket
import sys

import pytest
from tickwire.accounts.config import parse_config
from tickwire.bench.marketdata_venue import venue_feed_benchmarks
from tickwire.cli.main import main
from tickwire.marketdata.feed_book import FeedBook
from tickwire.marketdata.service import FeedError
from tickwire.marketdata.settings import FeedSettings, add_feed_arguments, settings_from_args
from tickwire.marketdata.snapshot import SnapshotServer
from tickwire.marketdata.subscriber import Subscriber
from tickwire.ops.serve import Venue
from tickwire.protocol import itch, moldudp64, soupbintcp
from venue_util import config_dict, login, make_venue

P = 10000


def any_ports(group, **kw):
    """Every part on, on ports the system picks."""
    return FeedSettings(group=group, port=0, rerequest_port=0, snapshot_port=0, ws_port=0,
                        heartbeat=0.2, **kw)


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def subscriber_of(venue, snapshot=False, **kw):
    md = venue.marketdata
    return Subscriber(*md.feed_address, rerequest=md.rerequest_address,
                      snapshot=md.snapshot_address if snapshot else None,
                      rerequest_interval=0.2, **kw)


async def trade(venue, prefix, n=20):
    """``n`` resting bids and offers from alice and bob, half of them crossing."""
    alice, a = await login(venue, "alice")
    bob, b = await login(venue, "bob")
    for i in range(n):
        alice.enter(f"{prefix}A{i}", "B", 100 * (1 + i % 3), "AAPL", (100 + i % 4) * P)
        bob.enter(f"{prefix}B{i}", "S", 100, "AAPL", (102 - i % 5) * P)
    await a.wait(lambda s: len(s.of(b"A")) >= n)
    await b.wait(lambda s: len(s.of(b"A")) + len(s.of(b"J")) >= n)
    await venue.sequencer.drain()
    await alice.close()
    await bob.close()


async def caught_up(sub, venue, timeout=5.0):
    await sub.wait_for(venue.marketdata.next_sequence, timeout)


# -- settings ------------------------------------------------------------------------------

def test_settings_from_config_table_then_options():
    table = {"group": "239.255.70.2", "port": 0, "ws_port": "off", "retransmit_seconds": 120,
             "rerequest_port": False}
    s = FeedSettings.from_dict(table)
    assert (s.group, s.port, s.ws_port, s.rerequest_port, s.retransmit_seconds) == \
        ("239.255.70.2", 0, None, None, 120)
    assert s.snapshot_port == FeedSettings().snapshot_port
    parser = add_feed_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--ws-port", "9000", "--feed-port", "off",
                              "--retransmit-seconds", "off", "--feed-ttl", "0"])
    s = settings_from_args(args, table, host="0.0.0.0")
    assert (s.ws_port, s.port, s.retransmit_seconds, s.ttl, s.host) == (9000, None, None, 0,
                                                                         "0.0.0.0")
    assert s.group == "239.255.70.2"            # from the table, not overridden


@pytest.mark.parametrize("table, message", [
    ({"groop": "239.1.1.1"}, "unknown feed setting 'groop'"),
    ({"group": "10.0.0.1"}, "not a multicast address"),
    ({"group": "nowhere"}, "not an IPv4 address"),
    ({"rerequest_port": 70000}, "is not a port"),
    ({"ttl": 300}, "ttl 300"),
    ({"retransmit_messages": 0}, "positive integer"),
    ({"group": "off"}, "cannot be turned off"),
    ({"session": "ELEVENCHARS"}, "1 to 10 ASCII"),
])
def test_bad_settings_are_named(table, message):
    with pytest.raises(ValueError, match=message):
        FeedSettings.from_dict(table)


def test_bad_port_option_is_refused_by_the_parser(capsys):
    parser = add_feed_arguments(argparse.ArgumentParser())
    with pytest.raises(SystemExit):
        parser.parse_args(["--snapshot-port", "http"])
    assert "invalid port value: 'http'" in capsys.readouterr().err


# -- several venues on one machine ---------------------------------------------------------

def test_three_venues_on_one_machine_each_their_own_feed(tmp_path):
    async def main():
        venues = [await make_venue(tmp_path, f"v{i}", feed=any_ports(f"239.255.71.{i + 1}"))
                  .start() for i in range(3)]
        md = [v.marketdata for v in venues]
        for part in ("feed_address", "rerequest_address", "snapshot_address", "ws_address"):
            addresses = [getattr(m, part) for m in md]
            assert all(a is not None and a[1] != 0 for a in addresses), part
            assert len(set(addresses)) == 3, part
        subs = [await subscriber_of(v).start() for v in venues]
        for i, venue in enumerate(venues):
            await trade(venue, f"V{i}", n=5 + 5 * i)
        for sub, venue in zip(subs, venues):
            await caught_up(sub, venue)
            assert sub.book.book.state() == venue.book.state()
            assert sub.foreign == 0 and sub.duplicates == 0
        assert len({len(v.book.orders) for v in venues}) == 3      # three different books
        for sub in subs:
            await sub.close()
        for venue in venues:
            await venue.stop()
    run(main())


def test_config_feed_table_is_the_default_and_status_says_where(tmp_path):
    async def main():
        assert make_venue(tmp_path).marketdata is None      # no [feed] table: no network feed
        table = {"group": "239.255.72.1", "port": 0, "rerequest_port": 0,
                 "snapshot_port": "off", "ws_port": "off"}
        cfg = parse_config({**config_dict(), "feed": table})
        venue = await Venue(cfg, str(tmp_path / "w.wal")).start()
        md = venue.marketdata
        assert venue.status()["feed"]["group"] == list(md.feed_address)
        assert md.snapshot_address is None and md.ws_address is None
        lines = md.describe()
        assert f"re-request (MoldUDP64, UDP) on 127.0.0.1:{md.rerequest_address[1]}" in lines[1]
        assert lines[2] == "feed: snapshot off"
        await venue.stop()
    run(main())


# -- restarts ------------------------------------------------------------------------------

def test_restart_continues_the_session_and_serves_what_came_before(tmp_path):
    """A receiver that lives through a restart sees neither a gap nor a duplicate, and the
    restarted venue's re-request server answers for messages sent before the restart."""
    async def main():
        first = await make_venue(tmp_path, feed=any_ports("239.255.73.1")).start()
        settings = FeedSettings.from_dict(
            {"port": first.marketdata.feed_address[1]}, base=first.marketdata.settings)
        seen = {}
        sub = await subscriber_of(first, on_message=lambda s, m: seen.setdefault(s, m)).start()
        await trade(first, "X")
        await caught_up(sub, first)
        before = first.marketdata.next_sequence
        await first.stop()                      # no close of day: the session goes on
        assert not sub.ended

        again = await make_venue(tmp_path, feed=settings).start()
        md = again.marketdata
        assert md.next_sequence == before and md.replayed == before - 1
        sub.rerequest = md.rerequest_address
        await trade(again, "Y")
        await caught_up(sub, again)
        assert sub.duplicates == 0 and sub.lost == 0 and not sub.stale
        assert sorted(seen) == list(range(1, md.next_sequence))
        assert sub.book.book.state() == again.book.state()

        answer = md.rerequest.answer(1, before - 1)     # messages from before the restart
        messages = [m for p in answer for m in moldudp64.decode_packet(p).messages]
        assert messages == [seen[s] for s in range(1, before)]

        late = await subscriber_of(again, snapshot=True).start()
        await late.synced.wait()
        await caught_up(late, again)
        assert late.book.book.state() == again.book.state()
        await again.close_day()
        await asyncio.wait_for(sub.complete.wait(), 5)
        for s in (sub, late):
            await s.close()
        await again.stop()
    run(main())


# -- bad input -----------------------------------------------------------------------------

def test_port_in_use_is_a_clear_error_and_nothing_is_left_open(tmp_path):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            venue = make_venue(tmp_path, feed=FeedSettings.from_dict(
                {"snapshot_port": port}, base=any_ports("239.255.74.1")))
            with pytest.raises(FeedError, match=f"snapshot on 127.0.0.1:{port}: port in use"):
                await venue.start()
            assert venue.marketdata.rerequest_address is None          # closed again
            assert venue.sequencer.exchange.seq == 0                   # nothing recovered
    run(main())


def test_interface_that_cannot_send_multicast(tmp_path):
    async def main():
        venue = make_venue(tmp_path, feed=any_ports("239.255.74.2", interface="192.0.2.77"))
        with pytest.raises(FeedError, match="cannot send multicast from interface 192.0.2.77"):
            await venue.start()
    run(main())


def test_snapshot_client_that_never_reads_is_dropped():
    server = SnapshotServer("TICKWIRE01", linger=0.5)
    server.on_packet(moldudp64.encode_packet("TICKWIRE01", 1, [itch.encode(
        b"R", stock_locate=1, timestamp=0, stock="AAPL", market_category="Q",
        financial_status_indicator="N", round_lot_size=100, round_lots_only="N",
        issue_classification="C", issue_sub_type="Z", authenticity="P",
        short_sale_threshold_indicator="N", ipo_flag="N", luld_reference_price_tier="1",
        etp_flag="N", etp_leverage_factor=0, inverse_indicator="N")]))
    for ref in range(1, 200_001):
        server.book.apply(itch.encode(b"A", stock_locate=1, timestamp=0,
                                      order_reference_number=ref, buy_sell_indicator="B",
                                      shares=100, stock="AAPL", price=1_000_000))

    async def main():
        await server.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(server.address)
        sock.sendall(soupbintcp.login_request("", ""))
        for _ in range(100):
            if server.stalled:
                break
            await asyncio.sleep(0.1)
        sock.close()
        await server.close()
        return server.stalled, server.served

    assert run(main()) == (1, 0)


# -- feed dump and watch against a venue -----------------------------------------------------

def test_feed_dump_starts_late_through_the_snapshot(tmp_path):
    """The snapshot's messages first (no sequence number), then the feed from its number on;
    together they rebuild the venue's book."""
    async def main():
        venue = await make_venue(tmp_path, feed=any_ports("239.255.76.1")).start()
        await trade(venue, "E")
        md = venue.marketdata
        out = tmp_path / "dump.jsonl"
        dump = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tickwire.cli.main", "feed", "dump",
            "--group", md.feed_address[0], "--port", str(md.feed_address[1]),
            "--snapshot", "{}:{}".format(*md.snapshot_address),
            "--rerequest", "{}:{}".format(*md.rerequest_address), "-o", str(out), "--duration", "20")
        while not out.exists() or '"snapshot": true' not in out.read_text():
            await asyncio.sleep(0.05)
        joined_at = md.next_sequence
        await trade(venue, "L", n=10)
        await venue.close_day()
        assert await asyncio.wait_for(dump.wait(), 20) == 0
        await venue.stop()
        return joined_at, venue.book.state()

    joined_at, state = run(main(), timeout=60)
    lines = [json.loads(line) for line in (tmp_path / "dump.jsonl").read_text().splitlines()]
    snapshot = [d for d in lines if d.get("snapshot")]
    live = [d for d in lines if not d.get("snapshot")]
    assert snapshot and all(d["seq"] is None for d in snapshot)
    assert lines[:len(snapshot)] == snapshot                    # the snapshot comes first
    assert [d["seq"] for d in live] == list(range(live[0]["seq"], live[-1]["seq"] + 1))
    assert live[0]["seq"] <= joined_at
    book = FeedBook()
    for d in snapshot + live:
        book.apply_bytes(itch.encode(d["type"].encode(), **{
            k: v for k, v in d.items() if k not in ("seq", "type", "snapshot")}))
    assert book.state() == state


@pytest.mark.parametrize("group, interface", [("239.255.76.2", "192.0.2.55"),
                                              ("10.1.2.3", "127.0.0.1")])
def test_feed_dump_of_a_group_that_cannot_be_joined(group, interface, capsys):
    assert main(["feed", "dump", "--group", group, "--interface", interface, "--duration",
                 "1"]) == 2
    assert f"tickwire feed: error: cannot join {group}:26400 on interface {interface}" in \
        capsys.readouterr().err


def test_venue_feed_benchmark_small():
    figures = {f.name: f for f in venue_feed_benchmarks(orders=300)}
    assert set(figures) == {
        "md venue feed published", "md venue feed packets",
        "md venue feed published per CPU second", "md publisher latency p50",
        "md publisher latency p99", "md re-request answer p50", "md re-request answer p99"}
    assert all(f.value > 0 for f in figures.values())
    assert figures["md publisher latency p50"].value <= figures["md publisher latency p99"].value
    assert "did NOT" not in figures["md venue feed published"].note


def test_malformed_rerequests_are_logged_and_a_good_one_still_answered(tmp_path, caplog):
    async def main():
        venue = await make_venue(tmp_path, feed=any_ports("239.255.77.1")).start()
        await trade(venue, "M", n=5)
        md = venue.marketdata
        loop = asyncio.get_running_loop()
        got = asyncio.Queue()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                got.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
        for bad in (b"short", moldudp64.encode_request("OTHER", 1, 5), b"TICKWIRE01" +
                    (0).to_bytes(8, "big") + (5).to_bytes(2, "big"),
                    b"TICKWIRE01" + (1).to_bytes(8, "big") + (0).to_bytes(2, "big")):
            transport.sendto(bad, md.rerequest_address)
        transport.sendto(moldudp64.encode_request("TICKWIRE01", 2, 3), md.rerequest_address)
        answer = moldudp64.decode_packet(await asyncio.wait_for(got.get(), 5))
        transport.close()
        ignored = md.rerequest.ignored
        await venue.stop()
        return answer, ignored

    with caplog.at_level("WARNING", logger="tickwire.marketdata.rerequest"):
        answer, ignored = run(main())
    assert (answer.sequence, answer.count) == (2, 3) and ignored == 4
    assert len([r for r in caplog.records if "ignored" in r.getMessage()]) == 4


def test_range_no_longer_held_is_told_not_waited_for(tmp_path):
    """With a buffer of 30 messages, a late subscriber asking for the open learns at once that
    it is gone: without a snapshot server it reports the loss, with one it resynchronises."""
    async def main():
        feed = FeedSettings.from_dict({"retransmit_messages": 30}, base=any_ports("239.255.77.2"))
        venue = await make_venue(tmp_path, feed=feed).start()
        await trade(venue, "R", n=30)
        losses = []
        blind = await subscriber_of(venue, on_loss=lambda *gap: losses.append(gap)).start()
        helped = await subscriber_of(venue, snapshot=True).start()
        await trade(venue, "S", n=3)                    # packets that show the gap
        await caught_up(blind, venue)
        await caught_up(helped, venue)
        oldest = venue.marketdata.rerequest.history.oldest
        state = venue.book.state()
        await blind.close()
        await helped.close()
        await venue.stop()
        return losses, blind, helped, oldest, state

    losses, blind, helped, oldest, state = run(main())
    assert losses and losses[0][0] == 1 and losses[0][1] <= oldest and blind.stale
    assert not helped.stale and helped.book.book.state() == state
