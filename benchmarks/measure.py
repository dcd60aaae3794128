"""Timing, statistics and peak memory, shared by both workers (framework-free)."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import time
from collections.abc import Callable
from typing import Any

import numpy as np

MIB = 2 ** 20


def time_calls(call: Callable[[], Any], n_calls: int, sync: Callable[[Any], None]) -> float:
    """Seconds per call of ``n_calls`` back-to-back calls.

    The clock stops only once ``sync`` has waited for the last result: JAX dispatches
    asynchronously, and so does CUDA.
    """
    start = time.perf_counter()
    for _ in range(n_calls):
        out = call()
    sync(out)
    return (time.perf_counter() - start) / n_calls


def summarize(values) -> dict:
    """Median, extremes and quartiles of a list of measurements."""
    v = np.asarray(values, dtype=np.float64)
    q1, median, q3 = np.percentile(v, [25, 50, 75])
    return {"n": int(v.size), "median": float(median), "min": float(v.min()),
            "max": float(v.max()), "q1": float(q1), "q3": float(q3)}


def _read_status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class RssCounters:
    """Resident memory of this process (Linux). Its peak (VmHWM) is reset by writing 5
    to /proc/self/clear_refs, so one long-lived worker can measure workloads apart."""

    kind = "CPU resident memory (RSS)"

    def current(self) -> int:
        return _read_status_kib("VmRSS") * 1024

    def peak(self) -> int:
        return _read_status_kib("VmHWM") * 1024

    def reset_peak(self) -> None:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    def release(self) -> None:
        """Collects garbage and hands free heap pages back to the OS, so that allocations
        show up in RSS instead of reusing memory something else freed."""
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass


class PeakMemory:
    """One workload's memory, from a backend's counters, in three figures.

    - setup peak: the rise while it was built, compiled and warmed up;
    - held: what it still holds after that (weights, optimizer state, inputs, compiled code,
      and, for the first workload of a process, one-time framework set-up);
    - run peak: the largest rise during its own timed calls above what the process held
      just before them (activations, XLA's scratch buffers): the comparable figure.

    Several workloads can live in one process at once (eager and compiled torch take
    turns); each one's run peak counts only its own calls.
    """

    def __init__(self, counters):
        self.counters = counters
        self.baseline = self.setup_peak = self.held = self.run_peak = 0

    def begin(self) -> None:
        """Before the workload is built."""
        self.counters.release()
        self.baseline = self.counters.current()
        self.counters.reset_peak()

    def steady(self) -> None:
        """After building, compiling and warming up."""
        self.setup_peak = self.counters.peak() - self.baseline
        self.counters.release()
        self.held = self.counters.current() - self.baseline

    @contextlib.contextmanager
    def running(self):
        """Around timed calls."""
        self.counters.release()
        self.counters.reset_peak()
        start = self.counters.current()
        yield
        self.run_peak = max(self.run_peak, self.counters.peak() - start)

    def read(self) -> dict:
        return {"kind": self.counters.kind, "setup_peak_mb": self.setup_peak / MIB,
                "held_mb": self.held / MIB, "run_peak_mb": self.run_peak / MIB}
