"""The journal's typed records: the binary codec, format-1 journals, the read API for clearing
and compliance, the journal port, the trade date."""

import datetime
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tickwire.accounts.config import load_config, make_config, write_config
from tickwire.cli.main import main
from tickwire.core.codec import CodecError, decode_request, encode_request
from tickwire.core.reasons import Origin, Reason
from tickwire.core.requests import (
    CancelOrder,
    DeclareSymbol,
    EngineDown,
    Halt,
    KillSwitch,
    NewOrder,
    Recovered,
    Reject,
    ReplaceOrder,
    Resume,
    SystemEvent,
)
from tickwire.gateways.ouch.reasons import CANCEL_CODES, REJECT_CODES
from tickwire.gateways.ouch.server import inbound_request
from tickwire.gateways.ouch.wire import MARKET_PRICE, encode_inbound
from tickwire.protocol.link import Action, Command, Side, Tif
from tickwire.sequencer.journal.port import JournalPort
from tickwire.sequencer.journal.reader import read_journal, trade_date
from tickwire.sequencer.journal.wal import MAGIC, MAGIC_V1, WriteAheadLog

FIXTURES = Path(__file__).parent / "fixtures"
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_ts = st.integers(0, 86_400 * 10**9)
_qty = st.integers(0, 2**32)
_attrs = st.lists(st.tuples(st.text(max_size=8), st.one_of(st.integers(-2**63, 2**63 - 1),
                                                           _text)), max_size=8).map(tuple)
REQUESTS = st.one_of(
    st.builds(NewOrder, ts=_ts, account=_text, token=_text, symbol=_text,
              side=st.sampled_from(list(Side)), qty=_qty,
              price=st.one_of(st.none(), st.integers(0, 2**40)), tif=st.sampled_from(list(Tif)),
              min_qty=_qty, attrs=_attrs),
    st.builds(CancelOrder, ts=_ts, account=_text, token=_text, qty=_qty, by_kill=st.booleans()),
    st.builds(ReplaceOrder, ts=_ts, account=_text, token=_text, new_token=_text, qty=_qty,
              price=st.integers(0, 2**40), attrs=_attrs),
    st.builds(DeclareSymbol, ts=_ts, symbol=_text, price=st.integers(1, 2**40),
              tick=st.one_of(st.none(), st.integers(1, 10**4)),
              lot=st.one_of(st.none(), st.integers(1, 10**4)),
              breaker_bp=st.one_of(st.none(), st.integers(0, 10**4))),
    st.builds(Halt, ts=_ts, symbol=_text), st.builds(Resume, ts=_ts, symbol=_text),
    st.builds(SystemEvent, ts=_ts, code=st.sampled_from("OSQMEC"),
              trade_date=st.one_of(st.none(), st.dates().map(datetime.date.isoformat))),
    st.builds(KillSwitch, ts=_ts, scope=st.sampled_from(["account", "firm"]), name=_text,
              on=st.booleans()),
    st.builds(Reject, ts=_ts, of=_text, account=st.one_of(st.none(), _text),
              token=st.one_of(st.none(), _text), reason=st.sampled_from(list(Reason)),
              text=_text, cancel=st.booleans()),
    st.builds(EngineDown, ts=_ts, failed=st.one_of(st.none(), st.integers(0, 2**40)),
              text=_text),
    st.builds(Recovered, ts=_ts, released=st.lists(st.integers(0, 2**40)).map(tuple)),
)


@given(REQUESTS)
def test_every_request_round_trips(request):
    data = encode_request(request)
    assert decode_request(data) == request
    assert request.__struct_config__.tag == request.KIND * 256 + request.VERSION


@pytest.mark.parametrize("data,why", [
    (b"", "truncated"), (b"\x93\xcd\x63\x01\x01\xa1x", "Invalid value 25345"),
    (b"\x93\xcd\x05\x09\x01\xa1x", "Invalid value 1289"),         # Halt, version 9
    (encode_request(Halt(ts=1, symbol="AAPL"))[:-1], "truncated"),
    (encode_request(Halt(ts=1, symbol="AAPL")) + b"x", "trailing"),
    (b"\x93\xcd\x05\x01\xa1x\xa1x", "Expected `int`"),            # ts not an integer
])
def test_bad_bytes_are_refused_clearly(data, why):
    with pytest.raises(CodecError, match=why):
        decode_request(data)


def test_unencodable_fields_are_refused_clearly():
    with pytest.raises(CodecError, match="CancelOrder cannot be encoded"):
        encode_request(CancelOrder(ts=1, account="a", token="t", qty=2**64))
    wrong_type = ReplaceOrder(ts=1, account="a", token="t", new_token="u", qty=1, price=1,
                              attrs=(("x", 1.5),))
    with pytest.raises(CodecError, match="ReplaceOrder cannot be encoded"):
        encode_request(wrong_type, check=True)
    # Unchecked (the journal's order path), it is refused when read back, never misread.
    with pytest.raises(CodecError, match="Expected `int | str`, got `float`"):
        decode_request(encode_request(wrong_type))
    with pytest.raises(CodecError, match="not a request"):
        encode_request({"op": "new"})


_ENTER = dict(order_token="T1", buy_sell_indicator="B", shares=100, stock="AAPL",
              price=1_000_000, time_in_force=99998, firm="", display="Y", capacity="A",
              intermarket_sweep_eligibility="N", minimum_quantity=0, cross_type="N")


@pytest.mark.parametrize("type_code,fields", [
    (b"O", _ENTER),
    (b"O", {**_ENTER, "price": MARKET_PRICE, "time_in_force": 0, "minimum_quantity": 100}),
    (b"O", {**_ENTER, "buy_sell_indicator": "T", "display": "Q"}),
    (b"O", {**_ENTER, "buy_sell_indicator": "Z"}),
    (b"O", {**_ENTER, "capacity": "?"}),
    (b"O", {**_ENTER, "shares": 0}),
    (b"O", {**_ENTER, "firm": "OTHR"}),
    (b"X", dict(order_token="T1", shares=0)),
    (b"U", dict(existing_order_token="T1", replacement_order_token="T2", shares=50,
                price=1_010_000, time_in_force=0, display="Y", intermarket_sweep_eligibility="N",
                minimum_quantity=0)),
    (b"U", dict(existing_order_token="T1", replacement_order_token="T2", shares=50,
                price=MARKET_PRICE, time_in_force=0, display="Y",
                intermarket_sweep_eligibility="N", minimum_quantity=0)),
    (b"U", dict(existing_order_token="T1", replacement_order_token="T2", shares=50,
                price=1_010_000, time_in_force=0, display="!", intermarket_sweep_eligibility="N",
                minimum_quantity=0)),
    (b"M", dict(order_token="T1", buy_sell_indicator="S", shares=10)),
])
def test_every_request_the_ouch_gateway_builds_reads_back(tmp_path, type_code, fields):
    """The journal encodes requests unchecked: what the gateway builds must read back."""
    path = str(tmp_path / "v.json")
    write_config(path, make_config({"a": {"firm": "FRMA", "password": "pw"}},
                                   symbols={"AAPL": 100.0}))
    config = load_config(path)
    request = inbound_request(config.accounts["a"], encode_inbound(type_code, **fields),
                              123, received=120)
    assert decode_request(encode_request(request)) == request
    assert encode_request(request, check=True) == encode_request(request)


def test_every_refusal_has_an_ouch_code_and_cancels_map():
    for reason in Reason:
        if reason.origin is not Origin.ENGINE:
            assert reason in REJECT_CODES, reason
    assert CANCEL_CODES[Reason.KILL_SWITCH] == "S" and REJECT_CODES[Reason.CREDIT] == "n"


def test_format_1_journal_is_read_and_upgraded_in_place(tmp_path):
    path = tmp_path / "session.wal"
    shutil.copy(FIXTURES / "wal_v1" / "session.wal", path)
    as_v1 = list(read_journal(str(path)))               # read only: not upgraded
    assert path.read_bytes()[:8] == MAGIC_V1 and len(as_v1) == 608
    assert trade_date(str(path)) is None                # format 1 recorded none
    kinds = {entry.request.__class__ for entry in as_v1}
    assert {NewOrder, CancelOrder, ReplaceOrder, DeclareSymbol, SystemEvent} <= kinds
    wal = WriteAheadLog(str(path), "none")
    wal.close_sync()
    assert path.read_bytes()[:8] == MAGIC and wal.upgraded_from == str(path) + ".v1"
    assert (tmp_path / "session.wal.v1").read_bytes() == (
        FIXTURES / "wal_v1" / "session.wal").read_bytes()
    assert list(read_journal(str(path))) == as_v1


def test_read_journal_refuses_other_files(tmp_path):
    (tmp_path / "x").write_bytes(b"NOTAWAL!")
    with pytest.raises(ValueError, match="not a tickwire journal"):
        list(read_journal(str(tmp_path / "x")))


def test_port_journals_before_the_engine_and_one_command_per_request(tmp_path):
    wal = WriteAheadLog(str(tmp_path / "p.wal"), "none")
    port = JournalPort(wal)
    request = SystemEvent(ts=3, code="O", trade_date="2026-12-07")
    command = Command(seq=1, timestamp=3, action=Action.SYSTEM, code=ord("O"))
    assert port.record(request, command) == 0
    with pytest.raises(RuntimeError, match="more than one engine command"):
        port.record(request, command)
    wal.close_sync()
    [entry] = read_journal(str(tmp_path / "p.wal"))
    assert entry.request == request and entry.command.to_bytes() == command.to_bytes()


def test_run_records_the_trade_date(tmp_path):
    out = tmp_path / "run"
    assert main(["-q", "run", "--orders", "300", "--clients", "2", "--out", str(out),
                 "--trade-date", "2026-12-04", "--no-progress"]) == 0
    assert trade_date(str(out / "session.wal")) == datetime.date(2026, 12, 4)
    opening = next(read_journal(str(out / "session.wal")))
    assert opening.request.code == "O" and opening.command.seq == 1


def test_bad_trade_date_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--trade-date", "2026-02-30"])
    assert "trade date '2026-02-30' is not YYYY-MM-DD" in capsys.readouterr().err


def test_the_command_is_journaled_before_the_engine_sees_it(tmp_path):
    from tickwire.accounts.config import make_config, parse_config
    from tickwire.engine.model import ModelEngine
    from tickwire.sequencer.sequencer import Sequencer

    wal = WriteAheadLog(str(tmp_path / "o.wal"), "none")
    logged_first = []

    engine = ModelEngine()
    model_process = engine.process

    def watching(command):
        last = list(wal.replay_records())[-1]
        logged_first.append(last.command.to_bytes() == command.to_bytes())
        return model_process(command)

    engine.process = watching

    config = parse_config(make_config({"alice": {"firm": "F01", "password": "pw"}},
                                      symbols={"AAPL": 100}, n=2**10))
    seq = Sequencer(engine, wal, config)
    seq.open_day(trade_date="2026-12-07")
    seq.submit_nowait(NewOrder(ts=seq.now(), account="alice", token="T1", symbol="AAPL",
                               side=Side.BUY, qty=100, price=1_000_000, tif=Tif.DAY))
    assert len(logged_first) == 5 and all(logged_first)     # O, declare, S, Q, the order
    wal.close_sync()
