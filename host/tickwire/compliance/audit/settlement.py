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

__all__ = ["COORDINATOR_LOG", "SETTLEMENT_EVENTS", "SettlementCycle", "settlement_records"]

log = logging.getLogger(__name__)

COORDINATOR_LOG = "ccp.db"
SETTLEMENT_EVENTS = ("ORDER_SETTLED", "SETTLEMENT_FAILED")
_FAILED = ("failed", "closed_out", "defaulted")


_CLOCK = "clearing: the settlement date (the CCP's coordinator log records dates)"


class SettlementCycle:
    """Where a clearing directory's settlement cycle left each DVP instruction.

    Use :meth:`load`; ``date`` is the settlement date (ISO), ``cycle`` the T+N of the run.
    """

    def __init__(self, date, cycle, instructions):
        self.date, self.cycle, self.instructions = date, cycle, instructions

    @classmethod
    def load(cls, clearing_dir):
        """The cycle of ``clearing_dir``, or None if it has not run to its end (logged).

        Raises
        ------
        ClearingFilesError
            The directory is not a clearing run.
        """
        info = read_clearing(clearing_dir)
        date = info.settlement_date.isoformat()
        path = os.path.join(clearing_dir, COORDINATOR_LOG)
        coordinator = CoordinatorLog(path) if os.path.exists(path) else None
        try:
            if coordinator is None or coordinator.cycle(date) is None:
                log.warning("%s: the settlement cycle of %s has not run: no settlement "
                            "records", clearing_dir, date)
                return None
            return cls(date, info.cycle, {i.id: i for i in coordinator.instructions()})
        finally:
            if coordinator is not None:
                coordinator.close()

    def record(self, execution, execution_id, **details):
        """The settlement record of ``execution`` (an ``ORDER_EXECUTED`` :class:`AuditRecord`
        whose ``quantity`` and ``price`` are the execution's), or None while its instruction
        is pending; ``details`` are added to the record's."""
        key = f"{self.date}:{execution.firm}:{execution.symbol}"
        instruction = self.instructions.get(key)
        details = {"execution_id": execution_id, "settlement_date": self.date,
                   "cycle": f"T+{self.cycle}", "instruction": key, **details}
        if instruction is None:
            event, details["netted"], details["instruction"] = "ORDER_SETTLED", True, None
        elif instruction.phase == "settled":
            event = "ORDER_SETTLED"
        elif instruction.phase in _FAILED:
            event, details["phase"] = "SETTLEMENT_FAILED", instruction.phase
            details["reason"] = instruction.reason
        else:
            return None
        when = f"{self.date}T00:00:00.000000Z"
        r = execution
        return AuditRecord(
            event, when, when, order_id=r.order_id, client_id_hash=r.client_id_hash,
            firm=r.firm, symbol=r.symbol, side=r.side, quantity=r.quantity, price=r.price,
            order_type=r.order_type, time_in_force=r.time_in_force, details=details,
            system_metadata=dict(r.system_metadata, clock_source=_CLOCK))


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
    cycle = SettlementCycle.load(clearing_dir)
    if cycle is None:
        return []
    out = (cycle.record(r, r.details.get("execution_id")) for r in records
           if r.event_type == "ORDER_EXECUTED" and r.firm is not None)
    return [r for r in out if r is not None]
