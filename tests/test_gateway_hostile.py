"""The gateway against hostile clients (issue #16, point 4): each finding, its fix, its test."""

import asyncio
import os
import threading

import pytest
import tickwire.gateways.ouch.server as server
from tickwire.accounts.config import verify_password
from tickwire.gateways.ouch import wire as ouch
from tickwire.gateways.ouch.client import LoginRejected, OuchClient
from tickwire.protocol import soupbintcp
from venue_util import PASSWORDS, login, make_venue

P = 10000


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def _pending(venue, count):
    """Wait until ``count`` connections are waiting to log in (the run's timeout guards)."""
    while sum(venue.gateway.pending.values()) < count:
        await asyncio.sleep(0.01)


@pytest.fixture
def scrypt_calls(monkeypatch):
    """Counts the password checks the gateway runs."""
    calls, lock = [], threading.Lock()

    def counting(password, stored):
        with lock:
            calls.append(password)
        return verify_password(password, stored)

    monkeypatch.setattr(server, "verify_password", counting)
    return calls


async def _bad_login(port, user="alice"):
    client = OuchClient(lambda *a: None)
    try:
        await client.connect("127.0.0.1", port, user, "wrong")
    except LoginRejected:
        return True
    except (ConnectionError, asyncio.IncompleteReadError):
        return True
    await client.close()
    return False


def test_concurrent_bad_logins_run_no_more_checks_than_the_limit(tmp_path, scrypt_calls):
    async def main():
        venue = await make_venue(tmp_path).start()
        limit = venue.gateway.login_failures
        refused = await asyncio.gather(*(_bad_login(venue.gateway.port) for _ in range(40)))
        assert all(refused)
        assert len(scrypt_calls) <= limit          # was 40: each ran scrypt (16 MiB)
        await venue.stop()

    run(main())


def test_password_checks_run_one_at_a_time_on_a_nicer_thread(tmp_path, monkeypatch):
    """A login flood's scrypt runs on the gateway's own thread, at a lower priority, one at a
    time: not in the loop's default executor, not beside the order path on every core."""
    seen, lock = [], threading.Lock()
    running = [0]

    def watching(password, stored):
        with lock:
            running[0] += 1
            seen.append((running[0], threading.current_thread().name,
                         os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        try:
            return verify_password(password, stored)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(server, "verify_password", watching)

    async def main():
        venue = await make_venue(tmp_path).start()
        limit = venue.gateway.login_failures
        assert all(await asyncio.gather(*(_bad_login(venue.gateway.port)
                                          for _ in range(limit))))
        await venue.stop()
        return limit

    own = os.getpriority(os.PRIO_PROCESS, 0)
    limit = run(main())
    assert len(seen) == limit
    assert {at_once for at_once, _, _ in seen} == {1}
    assert all(name.startswith("login-check") for _, name, _ in seen)
    assert all(nice == min(19, own + server.LOGIN_CHECK_NICENESS) for _, _, nice in seen)


def test_an_unknown_username_costs_the_same_check(tmp_path, scrypt_calls):
    async def main():
        venue = await make_venue(tmp_path).start()
        assert await _bad_login(venue.gateway.port, "nobody")
        assert len(scrypt_calls) == 1              # was 0: an instant answer told the name
        await venue.stop()

    run(main())


def test_a_trickled_login_has_one_deadline(tmp_path):
    async def main():
        venue = await make_venue(tmp_path, client_timeout=1.0).start()
        reader, writer = await asyncio.open_connection("127.0.0.1", venue.gateway.port)
        request = soupbintcp.login_request("alice", PASSWORDS["alice"])
        sent = 0
        for byte in request[:-1]:                  # one byte every 0.3 s, never complete
            writer.write(bytes((byte,)))
            sent += 1
            await asyncio.sleep(0.3)
            if reader.at_eof() or writer.is_closing():
                break
            try:
                if await asyncio.wait_for(reader.read(1), 0.01) == b"":
                    break
            except asyncio.TimeoutError:
                pass
        # Closed by the server mid-login (a slower machine closes it after fewer bytes); was:
        # a fresh 1 s per byte, so all of them went through and the connection stayed open.
        assert sent < len(request) - 1
        writer.close()
        await venue.stop()

    run(main())


def test_connections_waiting_to_log_in_are_capped_per_peer(tmp_path):
    async def main():
        venue = await make_venue(tmp_path).start()
        venue.gateway.max_pending_logins = 2
        waiting = [await asyncio.open_connection("127.0.0.1", venue.gateway.port)
                   for _ in range(2)]
        await _pending(venue, 2)
        reader, writer = await asyncio.open_connection("127.0.0.1", venue.gateway.port)
        # refused at once: not kept until its login deadline (15 s), a loaded machine or not
        assert await asyncio.wait_for(reader.read(100), 10) == b""
        assert venue.gateway.stats["connections refused"] == 1
        for _, w in waiting:
            w.close()
        writer.close()
        await asyncio.sleep(0.1)
        alice, a = await login(venue, "alice")    # the slots are free again
        await alice.logout()
        await venue.stop()

    run(main())


@pytest.mark.parametrize("field,value,code", [
    ("display", "Z", "D"), ("capacity", "X", "O"), ("intermarket_sweep_eligibility", "Q", "O"),
    ("cross_type", "Z", "O"), ("customer_type", "Q", "O"), ("shares", 0, "O"),
])
def test_invalid_enter_fields_are_rejected(tmp_path, field, value, code):
    async def main():
        venue = await make_venue(tmp_path).start()
        alice, a = await login(venue, "alice")
        fields = dict(order_token="E1", buy_sell_indicator="B", shares=100, stock="AAPL",
                      price=99 * P, time_in_force=99998, firm="", display="Y", capacity="A",
                      intermarket_sweep_eligibility="N", minimum_quantity=0, cross_type="N",
                      customer_type=" ")
        fields[field] = value
        alice.send(ouch.encode_inbound(b"O", **fields))
        await a.wait(lambda s: s.of(b"J"))
        [rejected] = a.of(b"J")
        assert rejected.reject_reason == code      # was: accepted and echoed (zero: "Z")
        assert not a.of(b"A")
        await alice.logout()
        await venue.stop()

    run(main())


def test_a_packet_before_a_bad_length_is_still_answered(tmp_path):
    async def main():
        venue = await make_venue(tmp_path).start()
        alice, a = await login(venue, "alice")
        order = soupbintcp.unsequenced_data(ouch.encode_inbound(
            b"O", order_token="G1", buy_sell_indicator="B", shares=100, stock="AAPL",
            price=99 * P, time_in_force=99998, firm="", display="Y", capacity="A",
            intermarket_sweep_eligibility="N", minimum_quantity=0, cross_type="N"))
        alice.send_raw(order + b"\x00\x00")        # one write: a good packet, a bad header
        await a.wait(lambda s: s.of(b"A"))         # was: dropped unanswered
        await alice.closed.wait()                   # closed by the bad header (run's guard)
        await venue.stop()

    run(main())


@pytest.mark.parametrize("args,why", [
    (["--symbol", "VERYLONGNAME=10"], "1 to 8 ASCII characters"),
    (["--symbol", "ACME=abc"], "not a number"),
    (["--account", "bob:F02:elevenchars"], "1 to 10 ASCII characters"),
])
def test_config_refuses_what_the_venue_could_not_use(tmp_path, capsys, args, why):
    from tickwire.cli.main import main
    out = tmp_path / "venue.json"
    assert main(["config", "--account", "alice:F01:secret", *args, "-o", str(out)]) == 2
    assert why in capsys.readouterr().err and not out.exists()


def test_a_flood_of_refused_connections_is_counted_but_logged_once(tmp_path, caplog):
    async def main():
        venue = await make_venue(tmp_path).start()
        venue.gateway.max_pending_logins = 1
        waiting = await asyncio.open_connection("127.0.0.1", venue.gateway.port)
        await _pending(venue, 1)
        for _ in range(5):
            reader, writer = await asyncio.open_connection("127.0.0.1", venue.gateway.port)
            assert await asyncio.wait_for(reader.read(100), 10) == b""     # refused at once
            writer.close()
        assert venue.gateway.stats["connections refused"] == 5
        waiting[1].close()
        await venue.stop()

    with caplog.at_level("WARNING", logger=server.__name__):
        run(main())
    refusals = [r for r in caplog.records if "already waiting to log in" in r.getMessage()]
    assert len(refusals) == 1          # the other four within REFUSAL_LOG_INTERVAL: counted only


def test_the_next_refusal_after_the_interval_says_how_many_were_not_logged(tmp_path, caplog,
                                                                          monkeypatch):
    monkeypatch.setattr(server, "REFUSAL_LOG_INTERVAL", 0.3)

    async def main():
        venue = await make_venue(tmp_path).start()
        gateway = venue.gateway
        with caplog.at_level("WARNING", logger=server.__name__):
            for _ in range(3):
                gateway.warn_peer("refused", "10.0.0.1", "%s refused", "10.0.0.1")
            await asyncio.sleep(0.4)
            gateway.warn_peer("refused", "10.0.0.1", "%s refused", "10.0.0.1")
            gateway.warn_peer("refused", "10.0.0.2", "%s refused", "10.0.0.2")   # another peer
        await venue.stop()

    run(main())
    messages = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert messages == ["10.0.0.1 refused",
                        "10.0.0.1 refused (2 more of these from 10.0.0.1 not logged)",
                        "10.0.0.2 refused"]
