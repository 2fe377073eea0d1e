"""The accounts of the two ledgers and the opening transfers that fund them.

Cash ledger (the settlement bank)            Securities ledger (the depository)
  ``BANK``            issuer, no limit          ``ISSUER:SYM``    issuer of SYM, no limit
  ``F01``             member cash               ``F01:SYM``       member position
  ``F01:margin``      margin posted             ``CCP:SYM``       the CCP's position
  ``F01:guarantee_fund``
  ``CCP``             CCP settlement account (intraday credit line)
  ``CCP:capital``     the CCP's own capital

Opening balances are transfers from the issuers, with fixed ids (``open:…``): applying them
twice changes nothing.
"""

from tickwire.clearing.ledger.records import Account, Transfer
from tickwire.clearing.records import CCP

__all__ = [
    "BANK",
    "CCP_CAPITAL",
    "cash_accounts",
    "guarantee_fund",
    "issuer",
    "margin",
    "opening_transfers",
    "position",
    "security_accounts",
]

BANK = "BANK"
CCP_CAPITAL = f"{CCP}:capital"


def issuer(symbol):
    return f"ISSUER:{symbol}"


def position(member, symbol):
    return f"{member}:{symbol}"


def margin(member):
    return f"{member}:margin"


def guarantee_fund(member):
    return f"{member}:guarantee_fund"


def cash_accounts(members, ccp_terms):
    out = [Account(BANK, None), Account(CCP, ccp_terms.credit_line), Account(CCP_CAPITAL)]
    for m in members:
        out += [Account(m), Account(margin(m)), Account(guarantee_fund(m))]
    return out


def security_accounts(members, symbols):
    out = []
    for s in symbols:
        out += [Account(issuer(s), None), Account(position(CCP, s))]
        out += [Account(position(m, s)) for m in members]
    return out


def opening_transfers(opening, ccp_terms, symbols):
    """(cash transfers, securities transfers) funding every member and the CCP."""
    cash = [Transfer(f"open:{CCP_CAPITAL}", BANK, CCP_CAPITAL, ccp_terms.capital,
                     code="opening")] if ccp_terms.capital else []
    shares = []
    for m, bal in sorted(opening.items()):
        for account, amount in ((m, bal.cash), (margin(m), bal.margin),
                                (guarantee_fund(m), bal.guarantee_fund)):
            if amount:
                cash.append(Transfer(f"open:{account}", BANK, account, amount, code="opening"))
        for s in symbols:
            if bal.shares.get(s):
                shares.append(Transfer(f"open:{position(m, s)}", issuer(s), position(m, s),
                                       bal.shares[s], code="opening"))
    return cash, shares
