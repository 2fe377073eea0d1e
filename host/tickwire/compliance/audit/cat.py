"""CAT-style regulatory export: order events as JSON lines.

One line per reportable event, named as in the CAT Industry Member specification: ``MENO``
(new order), ``MEOA`` (order accepted), ``MEOM`` (order modified: a replace), ``MEOC`` (order
cancelled), ``MEOT`` (trade: one line per execution, from the side that removed liquidity,
naming both orders); in the broker's trail also ``MEOR`` (order routed: ``destination``, the
venue chosen, and the ``routes`` sent) and ``MEOF`` (order fulfillment: a venue's fill of the
customer's order, its shares, price, match number and venue). ``actionType`` is ``NEW``, or ``COR`` for a correction (which repeats the
corrected event with the corrected fields and names the event it corrects). Prices are decimal
strings, times the audit record's UTC timestamps, the customer the ``client_id_hash``.
"""

import json
import os

__all__ = ["cat_events", "write_cat"]

_TYPES = {"ORDER_RECEIVED": "MENO", "ORDER_ACCEPTED": "MEOA", "ORDER_REPLACED": "MEOM",
          "ORDER_CANCELLED": "MEOC", "ORDER_EXECUTED": "MEOT", "ORDER_ROUTED": "MEOR"}
_SIDE = {"BUY": "B", "SELL": "SL"}
_ORDER_TYPE = {"LIMIT": "LMT", "MARKET": "MKT"}


def _event(record, event_type, action, date, firm_roe):
    d = record.get("details") or {}
    out = {"actionType": action, "eventType": event_type, "firmROEID": firm_roe,
           "eventTimestamp": record["timestamp_processed"], "orderKeyDate": date,
           "orderID": record.get("order_id"), "symbol": record.get("symbol"),
           "side": _SIDE.get(record.get("side")), "price": record.get("price"),
           "quantity": record.get("quantity"),
           "orderType": _ORDER_TYPE.get(record.get("order_type")),
           "timeInForce": record.get("time_in_force"),
           "customerID": record.get("client_id_hash"), "memberID": record.get("firm")}
    if event_type == "MEOT":
        out["tradeID"] = d.get("execution_id")
    if event_type == "MEOF":
        fill = d["execution"]
        out.update(quantity=fill["qty"], price=fill["price"], fulfillmentID=fill["match_number"],
                   executingVenue=fill["venue"])
    if event_type == "MEOR":
        decision = record.get("routing_decision") or {}
        out["destination"] = decision.get("selected_venue")
        out["routes"] = decision.get("slices")
    if event_type == "MEOM":
        out["priorOrderID"] = d.get("previous_order_id")
    if event_type == "MEOC":
        out["cancelQty"] = record.get("quantity")
        out["leavesQty"] = d.get("leaves")
    return out


def cat_events(records, trade_date):
    """CAT-style events of a day's record objects (in trail order)."""
    by_id = {}
    for r in records:
        by_id[r["event_id"]] = r
        kind = r["event_type"]
        details = r.get("details") or {}
        if kind == "ORDER_EXECUTED" and "execution" in details:
            yield _event(r, "MEOF", "NEW", trade_date, r["event_id"])
            continue
        if kind == "ORDER_EXECUTED" and details.get("liquidity") != "R":
            continue
        if kind in _TYPES:
            yield _event(r, _TYPES[kind], "NEW", trade_date, r["event_id"])
        elif kind == "CORRECTION":
            original = by_id.get(r["corrects"])
            if original is None or original["event_type"] not in _TYPES:
                continue
            fixed = dict(original, **r["details"]["changes"])
            event = _event(fixed, _TYPES[original["event_type"]], "COR", trade_date,
                           r["event_id"])
            event["correctedFirmROEID"] = original["event_id"]
            event["correctionReason"] = r["details"].get("reason")
            yield event


def write_cat(path, records, trade_date):
    """Write the CAT-style events; return how many."""
    count = 0
    with open(path + ".partial", "w") as f:
        for event in cat_events(records, trade_date):
            f.write(json.dumps(event, separators=(",", ":")) + "\n")
            count += 1
    os.replace(path + ".partial", path)
    return count
