"""The broker's records as Alpaca-shaped JSON: money as decimal strings in dollars,
quantities as strings, times as RFC 3339."""

from tickwire.util.clock import iso_time
from tickwire.core.money import format_dollars

__all__ = ["account_json", "dollars", "nbbo_json", "order_json", "position_json"]


def dollars(units):
    return None if units is None else format_dollars(units)


def order_json(s):
    """An order snapshot (``Order.snapshot()``) as Alpaca's order object."""
    return {
        "id": s["id"], "client_order_id": s["client_order_id"],
        "created_at": iso_time(s["created_at"]), "updated_at": iso_time(s["updated_at"]),
        "submitted_at": iso_time(s["created_at"]), "filled_at": iso_time(s["filled_at"]),
        "expired_at": iso_time(s["expired_at"]), "canceled_at": iso_time(s["canceled_at"]),
        "failed_at": iso_time(s["failed_at"]), "asset_class": "us_equity",
        "symbol": s["symbol"], "qty": str(s["qty"]), "filled_qty": str(s["filled_qty"]),
        "filled_avg_price": dollars(s["filled_avg_price"]), "order_class": "simple",
        "order_type": s["type"], "type": s["type"], "side": s["side"],
        "time_in_force": s["time_in_force"], "limit_price": dollars(s["limit_price"]),
        "stop_price": None, "status": s["status"], "extended_hours": False,
        "reject_reason": s["reject_reason"], "replaced_at": iso_time(s["replaced_at"]),
        "replaced_by": s["replaced_by"], "replaces": s["replaces"],
    }


def position_json(p):
    return {"symbol": p["symbol"], "asset_class": "us_equity", "side": "long",
            "qty": str(p["qty"]), "qty_available": str(p["qty"]),
            "avg_entry_price": dollars(p["avg_entry_price"]),
            "cost_basis": dollars(p["cost_basis"]), "current_price": dollars(p["current_price"]),
            "market_value": dollars(p["market_value"]),
            "unrealized_pl": dollars(p["unrealized_pl"])}


def account_json(a):
    return {"id": a["id"], "account_number": a["id"], "currency": "USD",
            "status": "ACCOUNT_BLOCKED" if a["blocked"] else "ACTIVE",
            "cash": dollars(a["cash"]), "buying_power": dollars(a["buying_power"]),
            "long_market_value": dollars(a["long_market_value"]),
            "equity": dollars(a["equity"]), "portfolio_value": dollars(a["equity"]),
            "pattern_day_trader": False, "trading_blocked": a["blocked"],
            "account_blocked": a["blocked"], "multiplier": "1",
            "restricted_symbols": a["restricted"]}


def _quote(q):
    return None if q is None else {"price": dollars(q.price), "size": q.size, "venue": q.venue}


def nbbo_json(nbbo):
    return {"symbol": nbbo.symbol, "bid": _quote(nbbo.bid), "ask": _quote(nbbo.ask),
            "timestamp": iso_time(nbbo.timestamp)}
