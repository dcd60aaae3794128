"""What a framework backend hands the worker, and the inputs both frameworks share."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


@dataclasses.dataclass
class Workload:
    """One unit of work, ready to call: a train step, a forward pass, a sampling run, a GEMM.

    ``call`` returns something the backend's ``sync`` can wait on; ``info`` holds what
    building it measured (for JAX: lowering and compile times, XLA's cost analysis).
    """

    call: Callable[[], Any]
    info: dict = dataclasses.field(default_factory=dict)


class Batch(NamedTuple):
    """Images x0 and noise eta (NHWC float32) and timesteps t (int32), seeded."""

    x0: np.ndarray
    t: np.ndarray
    eta: np.ndarray


def make_batch(n: int, n_steps: int, seed: int = 0) -> Batch:
    """The same arrays in every process, whatever the framework (numpy's generator)."""
    rng = np.random.default_rng([seed, n])
    x0 = rng.uniform(-1.0, 1.0, (n, 28, 28, 1)).astype(np.float32)
    t = rng.integers(0, n_steps, n).astype(np.int32)
    eta = rng.standard_normal((n, 28, 28, 1)).astype(np.float32)
    return Batch(x0, t, eta)


def nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
