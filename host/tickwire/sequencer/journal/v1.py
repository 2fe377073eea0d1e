"""Reading journals of format 1 (``TWWAL001``, main before 2026-12-07): their records as the
typed requests of today.

Format 1 stored each request as a dict (its "context"): a UTF-8 JSON object, or for the three
order-entry requests a compact binary form (flags bit 1). Its rejects carried the OUCH reject
letter the client got; :data:`_V1_REJECT` turns each back into the neutral reason that the OUCH
gateway maps to that same letter (the text tells apart the reasons that share one), so a day
recovered from a format-1 journal sends its clients the very same bytes.

Only reading is kept: :class:`~tickwire.sequencer.journal.wal.WriteAheadLog` upgrades a
format-1 file to the current format when it opens it for writing.

Format-1 payload::

    U8   flags      bit 0: a Command follows; bit 1: the context is binary (else JSON)
    53   command    ``Command.to_bytes()``, if flag bit 0
    ...  context

Binary contexts (big-endian; ``str`` = U8 length + ASCII; ``C`` one ASCII byte)::

    U8 kind = 1  new      U64 ts, U32 qty, U64 price + 1 (0: None, market), U8 tif,
                          U32 min_qty, C side, ouch {C side, U32 tif, C display,
                          C capacity, C ise, U32 min_qty, C cross}, str acct, str token,
                          str symbol
    U8 kind = 2  cancel   U64 ts, U32 qty, U8 by (0: none, 1: "kill"), str acct, str token
    U8 kind = 3  replace  U64 ts, U32 qty, U32 price, ouch {U32 tif, C display, C ise,
                          U32 min_qty}, str acct, str token, str new_token
"""

import json
import struct
from decimal import Decimal

from tickwire.core.reasons import Reason
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
from tickwire.protocol.link import COMMAND_BYTES, Command, Side, Tif

__all__ = ["MAGIC_V1", "decode_record_v1", "request_from_context"]

MAGIC_V1 = b"TWWAL001"
_SIDE = {"B": Side.BUY, "S": Side.SELL}
_TIF = {int(m): m for m in Tif}

_NEW = struct.Struct(">BQIQBIcc" + "IcccIc")
_CANCEL = struct.Struct(">BQIB")
_REPLACE = struct.Struct(">BQII" + "IccI")
def _texts(buf, offset, count):
    out = []
    for _ in range(count):
        n = buf[offset]
        end = offset + 1 + n
        if end > len(buf):
            raise ValueError("WAL payload: binary context cut short")
        out.append(buf[offset + 1:end].decode("ascii"))
        offset = end
    if offset != len(buf):
        raise ValueError("WAL payload: trailing bytes after a binary context")
    return out


def _decode_binary(buf):
    kind = buf[0] if buf else None
    try:
        if kind == 1:
            (_, ts, qty, price, tif, min_qty, side, o_side, o_tif, display, capacity, ise,
             o_min_qty, cross) = _NEW.unpack_from(buf)
            acct, token, symbol = _texts(buf, _NEW.size, 3)
            return {"acct": acct, "min_qty": min_qty, "op": "new",
                    "ouch": {"capacity": capacity.decode("ascii"),
                             "cross": cross.decode("ascii"),
                             "display": display.decode("ascii"), "ise": ise.decode("ascii"),
                             "min_qty": o_min_qty, "side": o_side.decode("ascii"),
                             "tif": o_tif},
                    "price": None if price == 0 else price - 1, "qty": qty,
                    "side": side.decode("ascii"), "symbol": symbol, "tif": tif, "token": token,
                    "ts": ts}
        if kind == 2:
            _, ts, qty, by = _CANCEL.unpack_from(buf)
            if by > 1:
                raise ValueError("WAL payload: bad cancel origin")
            acct, token = _texts(buf, _CANCEL.size, 2)
            ctx = {"acct": acct, "op": "cancel", "qty": qty, "token": token, "ts": ts}
            if by:
                ctx = {"acct": acct, "by": "kill", "op": "cancel", "qty": qty, "token": token,
                       "ts": ts}
            return ctx
        if kind == 3:
            _, ts, qty, price, o_tif, display, ise, o_min_qty = _REPLACE.unpack_from(buf)
            acct, token, new_token = _texts(buf, _REPLACE.size, 3)
            return {"acct": acct, "new_token": new_token, "op": "replace",
                    "ouch": {"display": display.decode("ascii"), "ise": ise.decode("ascii"),
                             "min_qty": o_min_qty, "tif": o_tif},
                    "price": price, "qty": qty, "token": token, "ts": ts}
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"WAL payload: bad binary context ({exc})") from None
    raise ValueError(f"WAL payload: unknown binary context kind {kind!r}")




def _v1_reject_reason(letter, text):
    """The neutral reason of a format-1 reject (its OUCH letter and text)."""
    if letter == "O":
        if text.startswith("firm "):
            return Reason.WRONG_FIRM
        if text.startswith("side "):
            return Reason.BAD_SIDE
        if text.endswith("not supported"):
            return Reason.UNSUPPORTED
        return Reason.THROTTLE
    if letter == "X":
        return Reason.MARKET_REPLACE if text == "market price on a replace" else Reason.COLLAR
    if letter == "n":
        return Reason.CREDIT if "credit limit" in text else Reason.MAX_NOTIONAL
    reason = _V1_REJECT.get(letter)
    if reason is None:
        raise ValueError(f"format-1 reject letter {letter!r} is not known")
    return reason


#: Format-1 reject letters with one meaning (the shared ones: :func:`_v1_reject_reason`).
_V1_REJECT = {"a": Reason.KILL_SWITCH, "c": Reason.RESTRICTED, "Z": Reason.MAX_QTY,
              "m": Reason.POSITION, "C": Reason.ENGINE_DOWN}


def _attrs(ouch):
    return tuple(sorted(ouch.items()))


def _bp(pct):
    if pct is None:
        return None
    bp = Decimal(str(pct)) * 100
    if bp != bp.to_integral_value():
        raise ValueError(f"breaker_pct {pct!r} is not a whole number of basis points")
    return int(bp)


def request_from_context(ctx):
    """A format-1 context dict → its typed request (ValueError if it is not one)."""
    op, ts = ctx.get("op"), ctx.get("ts", 0)
    try:
        if op == "new":
            return NewOrder(ts=ts, account=ctx["acct"], token=ctx["token"], symbol=ctx["symbol"],
                            side=_SIDE[ctx["side"]], qty=ctx["qty"], price=ctx["price"],
                            tif=_TIF[ctx["tif"]], min_qty=ctx["min_qty"],
                            attrs=_attrs(ctx.get("ouch", {})))
        if op == "cancel":
            return CancelOrder(ts=ts, account=ctx["acct"], token=ctx["token"], qty=ctx["qty"],
                               by_kill=ctx.get("by") == "kill")
        if op == "replace":
            return ReplaceOrder(ts=ts, account=ctx["acct"], token=ctx["token"],
                                new_token=ctx["new_token"], qty=ctx["qty"], price=ctx["price"],
                                attrs=_attrs(ctx.get("ouch", {})))
        if op == "declare":
            return DeclareSymbol(ts=ts, symbol=ctx["symbol"], price=ctx["price"],
                                 tick=ctx.get("tick"), lot=ctx.get("lot"),
                                 breaker_bp=_bp(ctx.get("breaker_pct")))
        if op == "system":
            return SystemEvent(ts=ts, code=ctx["code"])
        if op == "halt":
            return Halt(ts=ts, symbol=ctx["symbol"])
        if op == "resume":
            return Resume(ts=ts, symbol=ctx["symbol"])
        if op == "kill":
            return KillSwitch(ts=ts, scope=ctx["scope"], name=ctx["name"], on=ctx["on"])
        if op == "reject":
            text = ctx.get("text", "")
            return Reject(ts=ts, of=ctx.get("of", ""), account=ctx.get("acct"),
                          token=ctx.get("token"), reason=_v1_reject_reason(ctx["reason"], text),
                          text=text, cancel=bool(ctx.get("cancel")))
        if op == "engine_down":
            return EngineDown(ts=ts, failed=ctx.get("failed"), text=ctx.get("text", ""))
        if op == "recovered":
            return Recovered(ts=ts, released=tuple(ctx.get("released", ())))
    except KeyError as exc:
        raise ValueError(f"format-1 {op!r} record without {exc}") from None
    raise ValueError(f"format-1 record of unknown operation {op!r}")


def decode_record_v1(payload):
    """A format-1 payload → (command or None, typed request); ValueError if malformed."""
    if not payload or payload[0] > 3:
        raise ValueError("WAL payload: bad flags byte")
    flags = payload[0]
    command, start = None, 1
    if flags & 1:
        if len(payload) < 1 + COMMAND_BYTES:
            raise ValueError("WAL payload: command cut short")
        command = Command.from_bytes(bytes(payload[1:1 + COMMAND_BYTES]))
        start += COMMAND_BYTES
    body = bytes(payload[start:])
    ctx = _decode_binary(body) if flags & 2 else json.loads(body.decode())
    return command, request_from_context(ctx)
