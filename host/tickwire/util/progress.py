"""Progress bars for long work (tqdm, on stderr)."""

from tqdm import tqdm

__all__ = ["progress"]


def progress(iterable, desc, unit, enabled=True, total=None):
    return tqdm(iterable, desc=desc, unit=unit, total=total, mininterval=0.5,
                disable=not enabled, dynamic_ncols=True, unit_scale=True)
