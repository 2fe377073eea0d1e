"""``make bench``: measured figures, printed as a table and written to ``build/bench.json``.

Each benchmark is a function returning :class:`~tickwire.util.figure.Figure` rows, registered as
a ``tickwire.benchmarks`` entry point (``pyproject.toml``) beside the code it measures, so the
runner imports none of them: the gateware's figures live in ``tickwire.sim``, the gateway's in
``tickwire.gateways.ouch``. A row names a peer and the ratio against it when the peer ran in the
same process on the same input. Nothing here asserts a goal: the numbers are reported, and the
closing notes compare them with the goals.
"""

import json
from dataclasses import asdict
from importlib.metadata import entry_points
from pathlib import Path

__all__ = ["benchmarks", "run_benchmarks"]

GROUP = "tickwire.benchmarks"


def benchmarks():
    """name → entry point, in name order."""
    return {ep.name: ep for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name)}


def run_benchmarks(names=None, out="build/bench.json", echo=print):
    available = benchmarks()
    unknown = set(names or ()) - set(available)
    if unknown:
        raise ValueError(f"unknown benchmark {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(available)}")
    figures = []
    for name, entry in available.items():
        if names and name not in names:
            continue
        echo(f"running {name} ...")
        figures.extend(entry.load()())
    width = max(len(f.name) for f in figures)
    echo(f"{'benchmark':<{width}}  {'value':>14}  unit    peer / note")
    for f in figures:
        extra = f.peer or f.note or ""
        echo(f"{f.name:<{width}}  {f.value:>14,.2f}  {f.unit:<6}  {extra}")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n")
    echo(f"wrote {path}")
    return figures
