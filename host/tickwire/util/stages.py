"""Per-stage latency of the order path, cheap enough to leave on.

Each stage of a request's way through the venue (socket read, decode, risk, journal append,
engine, durable, report encode, socket write) is timed with ``time.perf_counter_ns`` where it
happens, and :meth:`StageTimes.record` puts the duration (ns) into a preallocated buffer of that
stage: one store, no allocation. A full buffer is folded into the stage's HDR histogram
(``hdrhistogram``, 3 significant digits) in one vectorized pass: the values are rounded down to
the histogram's own bucket boundaries, counted with numpy, and each distinct bucket is recorded
once with its count (a plain ``record_value`` per request costs ~3 µs; this about a tenth).
"""

import array
import csv

import numpy as np
from hdrh.histogram import HdrHistogram

__all__ = ["StageTimes", "STAGES", "READ", "DECODE", "RISK", "APPEND", "ENGINE", "DURABLE",
           "ENCODE", "WRITE", "format_stage_table", "write_stage_csv", "plot_stages"]

#: The stages, in the order a request meets them (the index constants below name them).
STAGES = ("socket read", "decode", "risk", "journal append", "engine", "durable",
          "report encode", "socket write")
READ, DECODE, RISK, APPEND, ENGINE, DURABLE, ENCODE, WRITE = range(len(STAGES))

_HIGHEST_NS = 60 * 10**9
_DIGITS = 3
_SUB_BUCKET_BITS = 11           # 2 * 10**3 values per octave need 2048 sub-buckets
_PERCENTILES = (50, 99, 99.9)


class StageTimes:
    """HDR histograms of each stage's durations (ns).

    Parameters
    ----------
    stages : tuple of str
        Stage names; :meth:`record` takes the index of one.
    buffer : int
        Durations kept per stage before they are folded into its histogram.

    What each stage measures (see the module docstring of :mod:`tickwire.gateways.ouch.server`
    and :mod:`tickwire.sequencer.sequencer` for where the clocks are read):

    ``socket read``     the read returned → this request's decode starts (framing, and the
                        requests before it in the same read)
    ``decode``          the OUCH message → a typed request
    ``risk``            the engine-down and pre-trade risk screen
    ``journal append``  the journal record encoded and written (``os.write``)
    ``engine``          the exchange and the engine, the append excluded
    ``durable``         the engine is done → the group commit covering the record is on disk
    ``report encode``   durable → the reports encoded and queued on their connections
    ``socket write``    queued → written to the socket (one write per loop turn per connection)
    """

    def __init__(self, stages=STAGES, buffer=16384):
        self.stages = tuple(stages)
        self.histograms = [HdrHistogram(1, _HIGHEST_NS, _DIGITS) for _ in self.stages]
        self._buffers = [array.array("q", bytes(8 * buffer)) for _ in self.stages]
        self._fill = [0] * len(self.stages)
        self._size = buffer

    def record(self, stage, ns):
        """Add one duration of ``stage`` (an index into :attr:`stages`)."""
        fill = self._fill
        i = fill[stage]
        self._buffers[stage][i] = ns
        i += 1
        if i == self._size:
            self._fold(stage, i)
            i = 0
        fill[stage] = i

    def record_many(self, stage, ns, count):
        """Add ``count`` requests that each took ``ns`` in ``stage`` (a batch timed once)."""
        if count > 0:
            self.histograms[stage].record_value(min(max(ns, 1), _HIGHEST_NS), count)

    def fold(self):
        """Move every buffered duration into the histograms (before reading them)."""
        for stage, fill in enumerate(self._fill):
            self._fold(stage, fill)
            self._fill[stage] = 0

    def reset(self):
        """Forget everything recorded so far."""
        self._fill = [0] * len(self.stages)
        for hist in self.histograms:
            hist.reset()

    def _fold(self, stage, fill):
        if not fill:
            return
        values = np.frombuffer(self._buffers[stage], dtype=np.int64, count=fill)
        values = np.clip(values, 1, _HIGHEST_NS)
        # Round down to the histogram's bucket: keep the top 11 significant bits.
        shift = np.maximum(np.floor(np.log2(values)).astype(np.int64) + 1 - _SUB_BUCKET_BITS, 0)
        buckets, counts = np.unique((values >> shift) << shift, return_counts=True)
        hist = self.histograms[stage]
        for value, count in zip(buckets.tolist(), counts.tolist()):
            hist.record_value(value, count)

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
