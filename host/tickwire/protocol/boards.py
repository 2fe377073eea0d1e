"""The boards' books: the engine capacity each board's bitstream is built with.

Data only, shared by the build (``tickwire.boards.synth``), the simulated board behind a
pseudo-terminal (``tickwire.sim.board_pty``) and the host, which checks a board's own report
(its STATUS frame) against the book it was told to expect (``serial:URL,board=NAME``).
"""

from tickwire.protocol.link import ModelParams

__all__ = ["BOARD_BOOKS", "board_book", "describe_book"]

#: board → the book its top is built with (``make bitstream`` without overrides).
BOARD_BOOKS = {
    # What fits the iCE40UP5K beside feed and link (see tickwire.boards.synth).
    "icebreaker": ModelParams(max_orders=128, max_symbols=2, band_ticks=128, max_qty=65535),
    # #15: 16K orders / 8 symbols / 1024 ticks on the ECP5-85F.
    "ulx3s": ModelParams(max_orders=16384, max_symbols=8, band_ticks=1024, max_qty=1_000_000),
}


def board_book(name):
    """The book of board ``name``; ``ValueError`` naming the boards if there is none."""
    try:
        return BOARD_BOOKS[name]
    except KeyError:
        raise ValueError(f"unknown board {name!r}; choose from "
                         f"{', '.join(sorted(BOARD_BOOKS))}") from None


def describe_book(params):
    """``ModelParams`` in words, for messages: ``128 orders, 2 symbols, …``."""
    text = (f"{params.max_orders} orders, {params.max_symbols} symbols, "
            f"{params.band_ticks} ticks, max qty {params.max_qty}")
    return text if params.max_levels is None else f"{text}, {params.max_levels} levels"
