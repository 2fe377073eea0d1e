"""Per-stage latency of the order path, cheap enough to leave on.

Each stage of a request's way through the venue (socket read, decode, risk, journal append,
engine, durable, handoff, report encode, socket write) is timed with ``time.perf_counter_ns`` where it
happens, and the duration (ns) is appended to that stage's pending list: on the order path
through :meth:`StageTimes.recorder` (the list's own ``append``, so no Python frame runs) or
:meth:`StageTimes.record`. The pending durations are folded into the stage's HDR histogram
(``hdrhistogram``, 3 significant digits) off the per-order path, by :meth:`StageTimes.fold_full`
(once per group commit) or before the histograms are read, in one vectorized pass: each
duration's counts index is computed with numpy exactly as ``HdrHistogram.record_value`` computes
it, and the counts are added in place (a ``record_value`` per request costs ~3 µs; this ~0.1).
"""

import csv

import numpy as np
from hdrh.histogram import HdrHistogram

__all__ = ["StageTimes", "STAGES", "READ", "DECODE", "RISK", "APPEND", "ENGINE", "DURABLE",
           "HANDOFF", "ENCODE", "WRITE", "format_stage_table", "write_stage_csv", "plot_stages"]

#: The stages, in the order a request meets them (the index constants below name them).
STAGES = ("socket read", "decode", "risk", "journal append", "engine", "durable", "handoff",
          "report encode", "socket write")
READ, DECODE, RISK, APPEND, ENGINE, DURABLE, HANDOFF, ENCODE, WRITE = range(len(STAGES))

_HIGHEST_NS = 60 * 10**9
_DIGITS = 3
_PERCENTILES = (50, 99, 99.9)


class StageTimes:
    """HDR histograms of each stage's durations (ns).

    Parameters
    ----------
    stages : tuple of str
        Stage names; :meth:`record` takes the index of one.
    buffer : int
        Durations kept pending per stage before :meth:`fold_full` folds them.

    What each stage measures (see the module docstring of :mod:`tickwire.gateways.ouch.server`
    and :mod:`tickwire.sequencer.sequencer` for where the clocks are read):

    ``socket read``     the read returned → this request's decode starts (framing, and the
                        requests before it in the same read)
    ``decode``          the OUCH message → a typed request
    ``risk``            the engine-down and pre-trade risk screen
    ``journal append``  the journal record encoded and written (``os.write``)
    ``engine``          the exchange and the engine, the append excluded
    ``durable``         the engine is done → the fsync covering the record returned (0 if it
                        returned first: the fsync runs beside the engine)
    ``handoff``         on disk (or the engine done, if later) → the loop publishes the reports
                        (the fsync's completion waiting for the loop to take it)
    ``report encode``   the publishing starts → the reports encoded and written (per request:
                        the whole group commit's publishing, over its requests)
    ``socket write``    a connection's first message queued → written to the socket
    """

    def __init__(self, stages=STAGES, buffer=16384):
        self.stages = tuple(stages)
        self.histograms = [HdrHistogram(1, _HIGHEST_NS, _DIGITS) for _ in self.stages]
        self._pending = [[] for _ in self.stages]       # durations (ns) not yet folded
        self._batches = [[] for _ in self.stages]       # record_many: ns, count, ns, count...
        self._size = buffer
        self._calls = 0

    def recorder(self, stage):
        """The cheapest way to record ``stage``: a callable taking one duration (ns).

        Whoever records through it calls :meth:`fold_full` now and then (the sequencer does,
        at every group commit), so the pending durations stay bounded.
        """
        return self._pending[stage].append

    def record(self, stage, ns):
        """Add one duration of ``stage`` (an index into :attr:`stages`)."""
        pending = self._pending[stage]
        pending.append(ns)
        if len(pending) >= self._size:
            self._fold(stage)

    def record_many(self, stage, ns, count):
        """Add ``count`` requests that each took ``ns`` in ``stage`` (a batch timed once)."""
        if count > 0:
            batches = self._batches[stage]
            batches += (ns, count)
            if len(batches) >= self._size:
                self._fold(stage)

    def fold_full(self):
        """Fold the stages holding ``buffer`` or more pending durations (looked at on every
        64th call only: a list grows by one batch per call at most between looks)."""
        self._calls += 1
        if self._calls & 63:
            return
        size = self._size
        for stage, pending in enumerate(self._pending):
            if len(pending) >= size:
                self._fold(stage)

    def fold(self):
        """Move every pending duration into the histograms (before reading them)."""
        for stage in range(len(self.stages)):
            self._fold(stage)

    def reset(self):
        """Forget everything recorded so far."""
        for pending, batches, hist in zip(self._pending, self._batches, self.histograms):
            pending.clear()
            batches.clear()
            hist.reset()

    def _fold(self, stage):
        pending, batches = self._pending[stage], self._batches[stage]
        if pending:
            _add(self.histograms[stage], np.array(pending, dtype=np.int64), None)
            pending.clear()
        if batches:
            pairs = np.array(batches, dtype=np.int64).reshape(-1, 2)
            _add(self.histograms[stage], pairs[:, 0], pairs[:, 1])
            batches.clear()

    def rows(self):
        """One dict per stage: ``stage``, ``count``, ``p50_us``, ``p99_us``, ``p99.9_us``,
        ``max_us``."""
        self.fold()
        out = []
        for name, hist in zip(self.stages, self.histograms):
            row = {"stage": name, "count": hist.get_total_count()}
            for pct in _PERCENTILES:
                row[f"p{pct:g}_us"] = _us(hist.get_value_at_percentile(pct)) if row["count"] else 0
            row["max_us"] = _us(hist.get_max_value()) if row["count"] else 0
            out.append(row)
        return out


def _add(hist, values, counts):
    """Record ``values`` (ns; each ``counts`` times, or once) into ``hist`` as its
    ``record_value`` would, in one vectorized pass."""
    values = np.clip(values, 1, _HIGHEST_NS)
    # HdrHistogram._counts_index_for: the bucket is the power of two holding the value (its
    # bit length, exact from frexp below 2**53), the sub-bucket its top bits.
    half = hist.sub_bucket_half_count_magnitude
    bits = np.frexp((values | hist.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
    bucket = bits - hist.unit_magnitude - (half + 1)
    index = ((bucket + 1) << half) + (values >> (bucket + hist.unit_magnitude)) \
        - hist.sub_bucket_half_count
    added = np.bincount(index, counts, minlength=hist.counts_len)
    np.ctypeslib.as_array(hist.counts)[:] += added.astype(np.uint64)
    hist.total_count += len(values) if counts is None else int(counts.sum())
    hist.min_value = min(hist.min_value, int(values.min()))
    hist.max_value = max(hist.max_value, int(values.max()))


def _us(ns):
    return round(ns / 1000, 1)


def format_stage_table(rows):
    """The stage table as lines of text (µs)."""
    width = max(len(r["stage"]) for r in rows)
    lines = [f"{'stage':<{width}}  {'count':>9}  {'p50 µs':>9}  {'p99 µs':>9}  {'p99.9 µs':>9}"
             f"  {'max µs':>9}"]
    for r in rows:
        lines.append(f"{r['stage']:<{width}}  {r['count']:>9,}  {r['p50_us']:>9,.1f}  "
                     f"{r['p99_us']:>9,.1f}  {r['p99.9_us']:>9,.1f}  {r['max_us']:>9,.1f}")
    return lines


def write_stage_csv(path, rows):
    """The stage table as CSV (columns ``stage,count,p50_us,p99_us,p99.9_us,max_us``)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_stages(path, rows, title="order path by stage"):
    """A bar chart of each stage's p50 / p99 / p99.9 (µs, log scale) as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(rows))
    for k, pct in enumerate(_PERCENTILES):
        ax.bar(x + (k - 1) * 0.27, [max(r[f"p{pct:g}_us"], 0.1) for r in rows], 0.27,
               label=f"p{pct:g}")
    ax.set_xticks(x, [r["stage"] for r in rows], rotation=20, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("µs")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
