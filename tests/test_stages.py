"""The stage clocks' histograms: what the vectorized fold records is exactly what
``HdrHistogram.record_value`` would record, and pending durations stay bounded."""

import random

from hdrh.histogram import HdrHistogram
from tickwire.util.stages import StageTimes


def _reference(values):
    hist = HdrHistogram(1, 60 * 10**9, 3)
    for value, count in values:
        hist.record_value(min(max(value, 1), 60 * 10**9), count)
    return hist


def _same(hist, reference):
    assert list(hist.counts) == list(reference.counts)
    assert (hist.total_count, hist.min_value, hist.max_value) == \
        (reference.total_count, reference.min_value, reference.max_value)
    for pct in (0, 50, 99, 99.9, 100):
        assert hist.get_value_at_percentile(pct) == reference.get_value_at_percentile(pct)


def test_fold_records_what_record_value_records():
    rng = random.Random(7)
    values = [int(rng.lognormvariate(rng.choice((3, 9, 14, 20)), 2)) for _ in range(20000)]
    values += [-5, 0, 1, 2047, 2048, 2049, 4095, 4096, 2**35 - 1, 2**35, 60 * 10**9, 10**12]
    times = StageTimes(("a", "b"), buffer=1000)
    for value in values:
        times.record(0, value)
    batches = [(rng.randrange(1, 10**7), rng.randrange(1, 50)) for _ in range(3000)]
    for value, count in batches:
        times.record_many(1, value, count)
    times.record_many(1, 5, 0)                      # an empty batch records nothing
    times.fold()
    _same(times.histograms[0], _reference((v, 1) for v in values))
    _same(times.histograms[1], _reference(batches))


def test_recorder_is_bounded_by_fold_full_and_rows_count_everything():
    times = StageTimes(("a",), buffer=100)
    record = times.recorder(0)
    for n in range(1, 1001):
        record(n * 1000)
        times.fold_full()
        assert len(times._pending[0]) <= 100 + 64
    row = times.rows()[0]
    assert row["count"] == 1000 and 1000 <= row["max_us"] <= 1001
    assert 495 <= row["p50_us"] <= 505
    times.reset()
    assert times.rows()[0]["count"] == 0
    record(5)                                       # the recorder survives a reset
    assert times.rows()[0]["count"] == 1
