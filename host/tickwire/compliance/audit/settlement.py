"""Settlement events of a day's executions, from the clearing run (``tickwire clear`` /
``settle``, the main job's ``clearing/``).

Clearing nets each member's day per symbol into one DVP instruction against the CCP
(``SETTLEMENT_DATE:MEMBER:SYMBOL``, :mod:`tickwire.clearing.settle`); the CCP's coordinator log
(``ccp.db``) says where each one ended. Every ``ORDER_EXECUTED`` record of the day gets one
record for its side of the trade:

- ``ORDER_SETTLED``: its member's instruction for the symbol settled (delivery against
  payment on the settlement date), or there was none because the member's buys and sells of
  the symbol offset exactly (``"netted": true``: settled by netting, nothing to move);
- ``SETTLEMENT_FAILED``: the instruction failed, was bought in (``closed_out``) or its member
  defaulted (``details.phase``, and the fail's kind in ``details.reason``).

An instruction not yet attempted gives no record. The coordinator log records dates, not
times: a settlement record's times are its settlement date at 00:00:00 UTC. Its
``client_id_hash``, order and trade fields are the execution's (the same day's salt), so the
regulator's query finds it with the day's other records.
"""

import logging
import os

from tickwire.clearing.coordinator_log import CoordinatorLog
from tickwire.clearing.files import read_clearing
from tickwire.compliance.audit.record import AuditRecord

__all__ = ["COORDINATOR_LOG", "SETTLEMENT_EVENTS", "settlement_records"]

log = logging.getLogger(__name__)

COORDINATOR_LOG = "ccp.db"
SETTLEMENT_EVENTS = ("ORDER_SETTLED", "SETTLEMENT_FAILED")
_FAILED = ("failed", "closed_out", "defaulted")


_CLOCK = "clearing: the settlement date (the CCP's coordinator log records dates)"


def _instructions(clearing_dir, date):
    """{id: Instruction} of the coordinator log, or None if the cycle of ``date`` has not
    run to its end."""
    path = os.path.join(clearing_dir, COORDINATOR_LOG)
    if not os.path.exists(path):
        return None
    log = CoordinatorLog(path)
    try:
        if log.cycle(date) is None:
            return None
        return {i.id: i for i in log.instructions()}
    finally:
        log.close()


def settlement_records(records, clearing_dir):
    """The settlement records of ``records``' executions (module docstring), in their order.

    Parameters
    ----------
    records : iterable of AuditRecord
        The day's records (from the journal).
    clearing_dir : str
        The day's clearing directory (``clearing.json`` and ``ccp.db``).

    Returns
    -------
    list of AuditRecord
        Empty if the settlement cycle has not run yet (logged).

    Raises
    ------
    ClearingFilesError
        The directory is not a clearing run.
    """
    info = read_clearing(clearing_dir)
    date = info.settlement_date.isoformat()
    instructions = _instructions(clearing_dir, date)
    if instructions is None:
        log.warning("%s: the settlement cycle of %s has not run: no settlement records",
                    clearing_dir, date)
        return []
    when = f"{date}T00:00:00.000000Z"
    out = []
    for r in records:
        if r.event_type != "ORDER_EXECUTED" or r.firm is None:
            continue
        key = f"{date}:{r.firm}:{r.symbol}"
        instruction = instructions.get(key)
        details = {"execution_id": r.details.get("execution_id"), "settlement_date": date,
                   "cycle": f"T+{info.cycle}", "instruction": key}
        if instruction is None:
            event, details["netted"], details["instruction"] = "ORDER_SETTLED", True, None
        elif instruction.phase == "settled":
            event = "ORDER_SETTLED"
        elif instruction.phase in _FAILED:
            event, details["phase"] = "SETTLEMENT_FAILED", instruction.phase
            details["reason"] = instruction.reason
        else:
            continue
        out.append(AuditRecord(
            event, when, when, order_id=r.order_id, client_id_hash=r.client_id_hash,
            firm=r.firm, symbol=r.symbol, side=r.side, quantity=r.quantity, price=r.price,
            order_type=r.order_type, time_in_force=r.time_in_force, details=details,
            system_metadata=dict(r.system_metadata, clock_source=_CLOCK)))
    return out
