"""One measured figure of ``make bench``."""

from dataclasses import dataclass

__all__ = ["Figure"]


@dataclass
class Figure:
    """A row of the benchmark table and of ``build/bench.json``.

    ``peer`` names what the figure is compared with and ``ratio`` is value / the peer's value,
    set only when the peer ran in the same process on the same input.
    """
    name: str
    value: float
    unit: str
    peer: str | None = None
    ratio: float | None = None      # value / peer's value (higher is better for rates)
    note: str | None = None
