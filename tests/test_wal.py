"""Write-ahead log: format, replay, torn tails, fsync policies, group commit."""

import asyncio
import logging
import os

import pytest
from tickwire.core.reasons import Reason
from tickwire.core.requests import Halt, NewOrder, Reject
from tickwire.protocol.link import Action, Command, Side, Tif
from tickwire.sequencer.journal.wal import (
    MAGIC,
    JournalRecord,
    WalError,
    WriteAheadLog,
    decode_record,
    encode_record,
)


def _cmd(seq):
    return Command(seq=seq, timestamp=1000 + seq, action=Action.NEW, symbol=1, qty=100,
                   price=15000, order_id=seq)


def _rec(i, command=True):
    """A journal record whose request carries ``i`` (its timestamp)."""
    return JournalRecord(Halt(ts=i, symbol="AAPL"), _cmd(i) if command else None)


def _raw(i):
    return encode_record(_rec(i, command=False))


def test_record_roundtrip():
    new = NewOrder(ts=7, account="alice", token="T7", symbol="AAPL", side=Side.SELL, qty=100,
                   price=None, tif=Tif.IOC, attrs=(("display", "Y"), ("min_qty", 0)))
    back = decode_record(encode_record(JournalRecord(new, _cmd(7))))
    assert back.command.to_bytes() == _cmd(7).to_bytes() and back.request == new
    reject = Reject(ts=8, of="new", account="alice", token="T8", reason=Reason.CREDIT,
                    text="credit limit")
    bare = decode_record(encode_record(JournalRecord(reject)))
    assert bare.command is None and bare.request == reject
    with pytest.raises(ValueError):
        decode_record(b"\x07{}")


def test_append_replay_reopen(tmp_path):
    path = str(tmp_path / "a.wal")
    wal = WriteAheadLog(path, fsync="none")
    assert [wal.append(_rec(i)) for i in range(5)] == list(range(5))
    assert [r.request.ts for r in wal.replay_records()] == list(range(5))
    wal.close_sync()
    with open(path, "rb") as f:
        assert f.read(8) == MAGIC
    wal = WriteAheadLog(path)
    assert wal.records == wal.durable_index == 5 and wal.truncated == 0
    assert wal.append(_raw(5)) == 5
    wal.close_sync()
    assert len(list(WriteAheadLog(path).replay())) == 6


@pytest.mark.parametrize("damage", ["half_header", "half_payload", "crc", "huge_length"])
def test_torn_tail_truncated_and_logged(tmp_path, caplog, damage):
    path = str(tmp_path / "t.wal")
    wal = WriteAheadLog(path, fsync="none")
    for i in range(3):
        wal.append(_rec(i))
    wal.close_sync()
    good = os.path.getsize(path)
    with open(path, "ab") as f:
        if damage == "half_header":
            f.write(b"\x00\x00")
        elif damage == "half_payload":
            f.write(b"\x00\x00\x00\x40" + b"\x00" * 4 + b"x" * 10)
        elif damage == "crc":
            f.write(b"\x00\x00\x00\x03" + b"\xde\xad\xbe\xef" + b"\x00{}")
        else:
            f.write(b"\x7f\xff\xff\xff" + b"\x00" * 12)
    cut = os.path.getsize(path) - good
    with caplog.at_level(logging.WARNING, logger="tickwire.sequencer.journal.wal"):
        wal = WriteAheadLog(path)
    assert wal.records == 3 and wal.truncated == cut
    assert os.path.getsize(path) == good
    assert any("torn tail" in r.message and f"cut {cut} bytes" in r.message
               for r in caplog.records)
    assert wal.append(_raw(3)) == 3
    wal.close_sync()
    assert [r.request.ts for r in WriteAheadLog(path).replay_records()] == [0, 1, 2, 3]


def test_not_a_wal(tmp_path):
    path = tmp_path / "x.wal"
    path.write_bytes(b"GARBAGE!and more")
    with pytest.raises(WalError):
        WriteAheadLog(str(path))


def test_bad_policy(tmp_path):
    with pytest.raises(ValueError):
        WriteAheadLog(str(tmp_path / "p.wal"), fsync="sometimes")


@pytest.mark.parametrize("policy", ["record", "none"])
def test_immediate_policies_are_durable_at_once(tmp_path, policy):
    wal = WriteAheadLog(str(tmp_path / "p.wal"), fsync=policy)
    seen = []
    wal.add_durable_listener(seen.append)
    wal.append(_raw(0))
    wal.append(_raw(1))
    assert wal.durable_index == 2 and seen == [1, 2]
    assert wal.fsyncs == (2 if policy == "record" else 0)
    wal.close_sync()


def test_group_commit_batches_fsyncs(tmp_path):
    async def main():
        wal = WriteAheadLog(str(tmp_path / "g.wal"))
        seen = []
        wal.add_durable_listener(seen.append)

        async def appender(k):
            for i in range(50):
                index = wal.append(_rec(k * 100 + i, command=False))
                await wal.durable(index)
                assert wal.durable_index > index

        await asyncio.gather(*(appender(k) for k in range(20)))
        assert wal.records == 1000 and wal.durable_index == 1000
        assert wal.fsyncs < 1000 / 4                    # batched
        assert seen == sorted(seen) and seen[-1] == 1000
        await wal.close()
        await wal.durable(3)                            # already durable: returns
        with pytest.raises(WalError):
            wal.append(_raw(0))

    asyncio.run(main())


def test_out_of_order_waiters(tmp_path):
    async def main():
        wal = WriteAheadLog(str(tmp_path / "o.wal"))
        for _ in range(3):
            wal.append(_raw(0))
        late = asyncio.create_task(wal.durable(2))
        early = asyncio.create_task(wal.durable(0))
        await asyncio.wait_for(asyncio.gather(late, early), 5)
        await wal.close()

    asyncio.run(main())
