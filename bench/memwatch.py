"""Shared bench helpers. Peak memory of a block of code: RSS sampled on a thread, and the process's ``ru_maxrss``.

``ru_maxrss`` is the process's all-time peak (imports included); the sampled rise is what the
block itself adds on top of the RSS it started from (sampled every ``interval`` seconds, so a
spike shorter than that can be missed).
"""

from __future__ import annotations

import resource
import threading
import time

import psutil


def model_source(model_dir: str = "") -> object:
    """The benchmarks' base model: the cached toy base, or a local folder (smoke tests)."""
    if model_dir:
        from rzero_pl.models.sources import PretrainedModel

        return PretrainedModel(model_dir)
    from rzero_pl.toy import ToyModel

    return ToyModel(progress=False)


def process_peak_mb() -> float:
    """This process's peak RSS so far, in MB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_mb() -> float:
    """The largest peak RSS of any waited-for child process, in MB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


class PeakRSS:
    """``with PeakRSS() as p: ...`` then ``p.rise_mb``, ``p.peak_mb``, ``p.process_peak_mb``."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self.start_mb = self.peak_mb = self.rise_mb = self.process_peak_mb = 0.0

    def _rss(self) -> float:
        return self._proc.memory_info().rss / 2**20

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._rss())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.start_mb = self.peak_mb = self._rss()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss())
        self.rise_mb = self.peak_mb - self.start_mb
        self.process_peak_mb = process_peak_mb()
