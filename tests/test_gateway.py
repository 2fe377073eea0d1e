"""The SoupBinTCP/OUCH gateway over loopback TCP: login, order flow, streams, bad input."""

import asyncio
import logging

import pytest
from tickwire.core.requests import NewOrder
from tickwire.engine.model import ModelEngine
from tickwire.gateways.ouch import server
from tickwire.gateways.ouch import wire as ouch
from tickwire.gateways.ouch.client import LoginRejected
from tickwire.protocol import soupbintcp
from venue_util import PASSWORDS, login, make_venue

P = 10000       # $1 in price units


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_order_flow_accept_execute_cancel_replace(tmp_path):
    async def main():
        venue = await make_venue(tmp_path).start()
        alice, a = await login(venue, "alice")
        bob, b = await login(venue, "bob")
        await a.count(1)
        assert a.messages[0][1].event_code == "S"            # start of day first
        alice.enter("A1", "B", 100, "AAPL", 100 * P)
        await a.count(2)
        bob.enter("B1", "S", 60, "AAPL", 100 * P, tif=0)     # IOC, marketable
        await b.count(3)
        acc = b.of(b"A")[0]
        assert (acc.order_token, acc.shares, acc.stock, acc.price, acc.time_in_force,
                acc.firm) == ("B1", 60, "AAPL", 100 * P, 0, "F02")
        ex_b = b.of(b"E")[0]
        assert (ex_b.executed_shares, ex_b.execution_price, ex_b.liquidity_flag,
                ex_b.match_number) == (60, 100 * P, "R", 1)
        await a.count(3)
        ex_a = a.of(b"E")[0]
        assert (ex_a.order_token, ex_a.liquidity_flag, ex_a.match_number) == ("A1", "A", 1)
        alice.replace("A1", "A2", 30, 99 * P)
        await a.count(4)
        rep = a.of(b"U")[0]
        assert (rep.replacement_order_token, rep.previous_order_token, rep.shares,
                rep.price) == ("A2", "A1", 30, 99 * P)
        alice.cancel("A2", 10)                                # leave 10
        alice.cancel("A2")
        await a.count(6)
        c1, c2 = a.of(b"C")
        assert (c1.decrement_shares, c1.cancel_reason) == (20, "U")
        assert (c2.decrement_shares, c2.cancel_reason) == (10, "U")
        # FOK convention: TIF 0 with minimum quantity = shares; nothing to fill: killed
        bob.enter("B2", "S", 500, "AAPL", 100 * P, tif=0, min_qty=500)
        # market order, nothing on the book: accepted, then cancelled
        bob.enter("B3", "B", 100, "AAPL", None)
        await b.count(7)
        kinds = [(raw[:1], r.order_token) for _, r, raw in b.messages[3:7]]
        assert kinds == [(b"A", "B2"), (b"C", "B2"), (b"A", "B3"), (b"C", "B3")]
        assert b.of(b"C")[0].cancel_reason == "I"
        assert b.of(b"A")[2].price == ouch.MARKET_PRICE
        await alice.logout()
        await bob.logout()
        await venue.stop()

    run(main())


def test_rejects_and_firm_isolation(tmp_path):
    async def main():
        venue = await make_venue(tmp_path).start()
        alice, a = await login(venue, "alice")
        bob, b = await login(venue, "bob")
        carol, c = await login(venue, "carol")
        alice.enter("A1", "B", 100, "AAPL", 99 * P)
        alice.enter("A1", "B", 100, "AAPL", 99 * P)           # duplicate token
        alice.enter("A3", "B", 100, "XYZ", 99 * P)            # restricted
        alice.enter("A4", "B", 100, "ZZZZ", 99 * P)           # unknown symbol
        alice.enter("A5", "B", 100, "AAPL", 999 * P)          # outside the band
        alice.enter("A6", "B", 100, "AAPL", 99 * P + 5)       # off the tick
        alice.enter("A7", "B", 100, "AAPL", 99 * P, firm="F02")   # not its firm
        alice.enter("A8", "Q", 100, "AAPL", 99 * P)           # bad side
        alice.send(ouch.encode_inbound(b"M", order_token="A1", buy_sell_indicator="B",
                                       shares=50))             # modify: not supported
        await a.count(10)
        reasons = [r.reject_reason for r in a.of(b"J")]
        assert reasons == ["O", "c", "S", "X", "X", "O", "O", "O"]
        bob.enter("B1", "S", 6000, "AAPL", 101 * P)           # fat finger (max 5000)
        bob.cancel("A1")                                      # other firm's token
        await b.count(3)
        assert b.of(b"J")[0].reject_reason == "Z"
        assert b.of(b"I")[0].order_token == "A1"
        carol.cancel("A1")                                    # same firm, other account
        await c.count(2)
        assert c.of(b"I")[0].order_token == "A1"
        assert not a.of(b"C")                                 # A1 untouched
        assert ("F01", "A1") in venue.sequencer.exchange.orders
        for cl in (alice, bob, carol):
            await cl.logout()
        await venue.stop()

    run(main())


def test_login_rules_and_rate_limit(tmp_path, caplog):
    async def main():
        venue = make_venue(tmp_path)
        await venue.start()
        venue.gateway.login_failures = 3
        port = venue.gateway.port
        from tickwire.gateways.ouch.client import OuchClient
        for user, pw in (("alice", "wrong"), ("nobody", "x"), ("bob", "")):
            with pytest.raises(LoginRejected) as exc:
                await OuchClient().connect("127.0.0.1", port, user, pw)
            assert exc.value.reason == "A"
        with pytest.raises(LoginRejected) as exc:               # rate-limited now
            await OuchClient().connect("127.0.0.1", port, "alice", PASSWORDS["alice"])
        assert exc.value.reason == "A"
        assert venue.gateway.stats["logins rate-limited"] == 1
        venue.gateway.failures.clear()
        with pytest.raises(LoginRejected) as exc:
            await OuchClient().connect("127.0.0.1", port, "alice", PASSWORDS["alice"],
                                       session="OTHER")
        assert exc.value.reason == "S"
        alice, _ = await login(venue, "alice")
        with pytest.raises(LoginRejected) as exc:               # already logged in
            await OuchClient().connect("127.0.0.1", port, "alice", PASSWORDS["alice"])
        assert exc.value.reason == "S"
        await alice.logout()
        await asyncio.sleep(0.05)
        again, _ = await login(venue, "alice")                  # free again after logout
        await again.logout()
        await venue.stop()

    with caplog.at_level(logging.WARNING, logger="tickwire.gateways.ouch.server"):
        run(main())
    assert any("rejected" in r.message for r in caplog.records)


def test_relogin_replays_from_the_requested_sequence(tmp_path):
    async def main():
        venue = await make_venue(tmp_path).start()
        alice, a = await login(venue, "alice")
        for i in range(4):
            alice.enter(f"A{i}", "B", 100, "AAPL", (95 + i) * P)
        first = await a.count(5)
        await alice.logout()
        alice, a2 = await login(venue, "alice", sequence=3)
        again = await a2.count(3)
        assert again[0][0] == 3
        assert [(n, raw) for n, _, raw in again] == [(n, raw) for n, _, raw in first[2:]]
        alice.enter("A9", "B", 100, "AAPL", 90 * P)
        await a2.count(4)
        assert a2.messages[-1][0] == 6
        await alice.logout()
        alice, a3 = await login(venue, "alice", sequence=0)     # from now on
        assert alice.next_seq == 7 and not a3.messages
        await alice.logout()
        alice, a4 = await login(venue, "alice", sequence=99)    # past the end: the end
        assert alice.next_seq == 7
        await alice.logout()
        await venue.stop()

    run(main())


async def _raw_login(port, user="alice", sequence=1):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(soupbintcp.login_request(user, PASSWORDS[user], "", sequence))
    framer = soupbintcp.Framer()
    packets = []
    while not packets:
        packets = framer.feed(await reader.read(4096))
    assert packets[0][0] == b"A"
    return reader, writer, framer, packets[1:]


async def _read_until_closed(reader, timeout):
    data = b""
    async def loop():
        nonlocal data
        while chunk := await reader.read(4096):
            data += chunk
    await asyncio.wait_for(loop(), timeout)
    return data


def test_heartbeats_and_client_silence_timeout(tmp_path):
    async def main():
        venue = await make_venue(tmp_path, heartbeat=0.2, client_timeout=0.9).start()
        reader, writer, framer, _ = await _raw_login(venue.gateway.port)
        t0 = asyncio.get_running_loop().time()
        data = await _read_until_closed(reader, 60)            # we stay silent (hang guard)
        elapsed = asyncio.get_running_loop().time() - t0
        types = [t for t, _ in framer.feed(data)]
        assert elapsed > 0.8                # not dropped before its client_timeout of 0.9 s
        assert types.count(b"H") >= 3 and set(types) <= {b"H", b"S"}
        writer.close()
        # a client that heartbeats stays
        alice, a = await login(venue, "alice", heartbeat=0.2)
        await asyncio.sleep(1.3)
        assert not alice.closed.is_set()
        await alice.logout()
        await venue.stop()

    run(main())


@pytest.mark.parametrize("case", ["garbage_first", "zero_length", "oversize", "type_after_login",
                                  "second_login"])
def test_bad_framing_disconnects_only_that_client(tmp_path, case, caplog):
    async def main():
        venue = await make_venue(tmp_path).start()
        port = venue.gateway.port
        alice, a = await login(venue, "alice")
        if case == "garbage_first":
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x00\x05Hello")
        else:
            reader, writer, _, _ = await _raw_login(port, "bob")
            writer.write({"zero_length": b"\x00\x00",
                          "oversize": b"\xff\xff" + b"x" * 100,
                          "type_after_login": b"\x00\x01Q",
                          "second_login": soupbintcp.login_request("bob", PASSWORDS["bob"]),
                          }[case])
        await _read_until_closed(reader, 5)
        writer.close()
        alice.enter("A1", "B", 100, "AAPL", 99 * P)            # the others keep working
        await a.wait(lambda s: s.of(b"A"))
        await alice.logout()
        await venue.stop()

    with caplog.at_level(logging.WARNING, logger="tickwire.gateways.ouch.server"):
        run(main())
    assert any("disconnecting" in r.message for r in caplog.records)


def test_bad_ouch_gets_debug_and_session_continues(tmp_path):
    async def main():
        venue = await make_venue(tmp_path).start()
        alice, a = await login(venue, "alice")
        enter = ouch.encode_inbound(b"O", order_token="A1", buy_sell_indicator="B", shares=100,
                                    stock="AAPL", price=99 * P, time_in_force=99998, firm="",
                                    display="Y", capacity="A",
                                    intermarket_sweep_eligibility="N", minimum_quantity=0,
                                    cross_type="N")
        alice.send(enter[:30])                                  # truncated
        alice.send(b"Q" + b"x" * 10)                            # unknown type
        alice.send(b"")                                         # empty
        alice.send(enter[:1] + b"\xff" * 48)                    # not ASCII
        alice.send(enter)
        await a.wait(lambda s: s.of(b"A"))
        await asyncio.sleep(0.05)
        assert len(alice.debug) == 4
        assert all(d.startswith(b"rejected:") for d in alice.debug)
        assert venue.gateway.stats["bad messages"] == 4
        await alice.logout()
        await venue.stop()

    run(main())


def test_kill_switch_cancels_and_blocks(tmp_path):
    async def main():
        venue = await make_venue(tmp_path).start()
        alice, a = await login(venue, "alice")
        bob, b = await login(venue, "bob")
        alice.enter("A1", "B", 100, "AAPL", 98 * P)
        alice.enter("A2", "S", 100, "AAPL", 102 * P)
        bob.enter("B1", "B", 100, "AAPL", 97 * P)
        await a.count(3)
        await b.count(2)
        await venue.sequencer.kill("firm", "F01")
        await a.count(5)
        assert [(c.order_token, c.cancel_reason) for c in a.of(b"C")] == [("A1", "S"),
                                                                          ("A2", "S")]
        alice.enter("A3", "B", 100, "AAPL", 98 * P)
        await a.count(6)
        assert a.of(b"J")[0].reject_reason == "a"
        assert ("F02", "B1") in venue.sequencer.exchange.orders   # others untouched
        await venue.sequencer.kill("firm", "F01", on=False)
        alice.enter("A4", "B", 100, "AAPL", 98 * P)
        await a.count(7)
        assert a.messages[-1][1].order_token == "A4" and a.messages[-1][2][:1] == b"A"
        await alice.logout()
        await bob.logout()
        await venue.stop()

    run(main())


def test_end_of_day_system_event_and_end_of_session(tmp_path):
    async def main():
        venue = await make_venue(tmp_path).start()
        alice, a = await login(venue, "alice")
        alice.enter("A1", "B", 100, "AAPL", 98 * P)             # DAY: expires at M
        await a.count(2)
        await venue.stop(close_day=True)
        await asyncio.wait_for(alice.closed.wait(), 5)
        codes = [(raw[:1], getattr(r, "event_code", None) or getattr(r, "cancel_reason", None))
                 for _, r, raw in a.messages]
        assert codes[-2:] == [(b"C", "E"), (b"S", "E")]
        assert alice.ended
        await alice.close()

    run(main())


def test_a_stop_answers_every_order_it_sequenced_before_end_of_session(tmp_path, monkeypatch):
    """A read is answered a few packets per loop turn: a stop in the middle of one must not
    sequence the rest after its drain (their answers then went to closed connections: a
    loaded CI machine saw 52 orders in the journal that their client never heard of)."""
    monkeypatch.setattr(server, "_TURN_PACKETS", 1)

    async def main():
        venue = await make_venue(tmp_path).start()
        alice, a = await login(venue, "alice")
        await a.count(1)                                        # start of day
        base = venue.wal.records
        burst, write = [], alice._write
        alice._write = burst.append
        for i in range(60):
            alice.enter(f"S{i}", "B", 100, "AAPL", 99 * P)
        alice._write = write
        alice.send_raw(b"".join(burst))                         # one read of 60 orders
        while venue.wal.records == base:                        # the read is being answered
            await asyncio.sleep(0)
        await venue.stop()
        await asyncio.wait_for(alice.closed.wait(), 5)
        sequenced = [r.request.token for r in venue.wal.replay_records()
                     if isinstance(r.request, NewOrder)]
        assert sequenced
        assert [r.order_token for r in a.of(b"A")] == sequenced         # was []
        assert alice.ended
        await alice.close()

    run(main())


class FlakyEngine(ModelEngine):
    """The model, until its link 'goes down' after ``n`` commands."""

    def __init__(self, n):
        super().__init__()
        self.n = n
        self.process = self._process

    def _process(self, cmd):
        self.n -= 1
        if self.n < 0:
            raise ConnectionError("engine link down")
        return self.model.process(cmd)


def test_engine_down_stops_intake_and_loses_nothing(tmp_path, caplog):
    async def main():
        venue = await make_venue(tmp_path, engine=FlakyEngine(8)).start()   # 5 at the open
        alice, a = await login(venue, "alice")
        for i in range(3):
            alice.enter(f"A{i}", "B", 100, "AAPL", (95 + i) * P)
        await a.count(4)
        alice.enter("A3", "B", 100, "AAPL", 99 * P)             # the engine dies on it
        alice.enter("A4", "B", 100, "AAPL", 99 * P)
        alice.cancel("A0")
        await a.count(6)
        assert [raw[:1] for _, _, raw in a.messages[4:]] == [b"J", b"I"]
        assert a.messages[4][1].reject_reason == "C"
        assert venue.status()["intake"].startswith("engine down")
        before = [raw for _, _, raw in a.messages]
        await alice.logout()
        await venue.stop()
        for restart in range(2):       # the streams are the same after any number of restarts
            venue = await make_venue(tmp_path).start()
            alice, a = await login(venue, "alice")
            await a.count(7)
            raws = [raw for _, _, raw in a.messages]
            assert raws[:6] == before                           # nothing acknowledged lost
            assert raws[6][:1] == b"A" and a.messages[6][1].order_token == "A3"
            assert ("F01", "A3") in venue.sequencer.exchange.orders
            await alice.logout()
            await venue.stop()

    with caplog.at_level(logging.ERROR, logger="tickwire.sequencer.sequencer"):
        run(main())
    assert any("order intake stopped" in r.message for r in caplog.records)


def test_nasdaq_protocols_client_interop(tmp_path):
    """nasdaq-protocols' SoupBinTCP client (left-justified numbers; 1 s heartbeats set)."""
    soup = pytest.importorskip("nasdaq_protocols.soup")

    async def main():
        venue = await make_venue(tmp_path).start()
        got = asyncio.Queue()

        async def on_msg(msg):
            await got.put(msg)

        session = await soup.connect_async(("127.0.0.1", venue.gateway.port), "alice",
                                           PASSWORDS["alice"], "", 1, on_msg_coro=on_msg,
                                           client_heartbeat_interval=1,
                                           server_heartbeat_interval=3)
        first = await asyncio.wait_for(got.get(), 5)
        assert isinstance(first, soup.SequencedData)
        assert ouch.decode_outbound(first.data).event_code == "S"
        session.send_unseq_data(ouch.encode_inbound(
            b"O", order_token="NQ1", buy_sell_indicator="B", shares=300, stock="MSFT",
            price=49 * P, time_in_force=99998, firm="F01", display="Y", capacity="P",
            intermarket_sweep_eligibility="N", minimum_quantity=0, cross_type="N"))
        session.send_unseq_data(ouch.encode_inbound(b"X", order_token="NQ1", shares=0))
        acks = []
        while len(acks) < 2:
            msg = await asyncio.wait_for(got.get(), 5)
            if isinstance(msg, soup.SequencedData):
                acks.append(ouch.decode_outbound(msg.data))
        assert acks[0].type_code == b"A" and acks[0].order_token == "NQ1"
        assert acks[0].capacity == "P"
        assert acks[1].type_code == b"C" and acks[1].cancel_reason == "U"
        await asyncio.sleep(2.2)                  # heartbeats both ways keep it alive
        assert not session.is_closed()
        session.logout()
        await asyncio.sleep(0.1)
        await venue.stop()

    run(main())


def test_captured_session_decodes_in_tshark(tmp_path):
    from tshark import TSHARK, fields, pdml, problems
    if TSHARK is None:
        pytest.skip("tshark not installed (apt-get install tshark)")
    from tickwire.protocol.pcap import PcapWriter, TcpConversationWriter
    chunks = []

    def tap(peer, from_client, data):
        chunks.append((peer, from_client, bytes(data)))

    async def main():
        venue = await make_venue(tmp_path, tap=tap).start()
        alice, a = await login(venue, "alice")
        bob, b = await login(venue, "bob")
        alice.enter("A1", "B", 100, "AAPL", 100 * P)
        bob.enter("B1", "S", 60, "AAPL", 100 * P, tif=0)
        await b.count(3)
        alice.replace("A1", "A2", 30, 99 * P)
        alice.cancel("A2")
        alice.enter("A1", "B", 100, "AAPL", 99 * P)
        await a.count(6)
        await alice.logout()
        await bob.logout()
        await venue.stop()
        return venue.gateway.port

    port = run(main())
    peers = sorted({p for p, _, _ in chunks})
    path = tmp_path / "ouch.pcap"
    with open(path, "wb") as f:
        writer = PcapWriter(f)
        t = 34_200 * 10**9
        for n, peer in enumerate(peers):
            conv = TcpConversationWriter(writer, ("10.0.0.2", 40000 + n), ("10.0.0.1", port))
            conv.open(t)
            for p, from_client, data in chunks:
                if p == peer:
                    t += 1000
                    conv.send(from_client, data, t)
            conv.close(t + 1000)
            t += 10_000
    rules = [f"tcp.port=={port},soupbintcp"]
    packets = pdml(path, rules)
    assert not problems(packets)
    rows = fields(path, rules, ["soupbintcp.packet_type", "ouch.packet_type"])
    soup_types = {t.strip("'") for row in rows for t in row["soupbintcp.packet_type"]}
    ouch_types = {t.strip("'") for row in rows for t in row["ouch.packet_type"]}
    assert {"L", "A", "S", "U", "O"} <= soup_types, soup_types
    assert {"O", "U", "X", "A", "E", "C", "J", "S"} <= ouch_types, ouch_types
