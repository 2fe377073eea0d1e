"""The ledger's records, after TigerBeetle's: accounts, transfers, flags and result codes.

A transfer debits one account and credits another by a positive integer amount. Single-phase
transfers post at once. A *pending* transfer reserves the amount (the debit account's
``debits_pending`` and the credit account's ``credits_pending`` grow) until a *post_pending*
transfer posts it (all or part), a *void_pending* transfer releases it, or its ``timeout``
(seconds) passes and it expires. A *linked* transfer succeeds only with the one after it: a
chain of linked transfers (each flagged but the last) is applied whole or not at all.
"""

import enum
from dataclasses import dataclass

__all__ = ["OK_RESULTS", "Account", "Balance", "Flags", "PendingState", "Result", "Transfer"]


class Flags(enum.IntFlag):
    NONE = 0
    LINKED = 1
    PENDING = 2
    POST_PENDING = 4
    VOID_PENDING = 8


class PendingState(enum.IntEnum):
    PENDING = 0
    POSTED = 1
    VOIDED = 2
    EXPIRED = 3


class Result(enum.Enum):
    OK = "ok"
    EXISTS = "exists"                                   # same id, same fields: already done
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    AMOUNT_MUST_NOT_BE_ZERO = "amount_must_not_be_zero"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    DEBIT_ACCOUNT_NOT_FOUND = "debit_account_not_found"
    CREDIT_ACCOUNT_NOT_FOUND = "credit_account_not_found"
    EXCEEDS_CREDITS = "exceeds_credits"                 # the debit account would go below its limit
    PENDING_ID_REQUIRED = "pending_id_required"
    PENDING_TRANSFER_NOT_FOUND = "pending_transfer_not_found"
    PENDING_TRANSFER_NOT_PENDING = "pending_transfer_not_pending"
    PENDING_TRANSFER_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_TRANSFER_EXPIRED = "pending_transfer_expired"
    EXCEEDS_PENDING_TRANSFER_AMOUNT = "exceeds_pending_transfer_amount"
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = "flags_are_mutually_exclusive"


OK_RESULTS = frozenset((Result.OK, Result.EXISTS))


@dataclass(frozen=True, slots=True)
class Account:
    """A ledger account. ``credit_limit`` is how far below zero its balance (credits posted −
    debits posted − debits pending) may go: 0 for a member (never negative), ``None`` for no
    limit (the issuer of the ledger's asset, whose balance is minus everything issued)."""
    id: str
    credit_limit: int | None = 0


@dataclass(frozen=True, slots=True)
class Transfer:
    """One transfer. ``amount`` 0 on a post means the whole pending amount; on a post or void
    ``debit``/``credit`` may be left empty (taken from the pending transfer)."""
    id: str
    debit: str = ""
    credit: str = ""
    amount: int = 0
    flags: Flags = Flags.NONE
    pending_id: str | None = None
    timeout: int = 0            # seconds, pending transfers only (0: never expires)
    code: str = ""              # what the transfer is for (free text, kept)


@dataclass(frozen=True, slots=True)
class Balance:
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def posted(self):
        """Credits posted − debits posted."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self):
        """What can still be debited: posted balance less pending debits."""
        return self.posted - self.debits_pending
