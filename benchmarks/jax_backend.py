"""The JAX side: ddpm_jax's jitted train step, forward pass and scanned sampler.

Every workload is compiled ahead of time (``jit(...).lower(...).compile()``), so compile
time is measured apart from the runs and no run ever includes a compilation.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.measure import MIB, PeakMemory, RssCounters
from benchmarks.workload import Batch, Workload, make_batch
from ddpm_jax import DDPM, create_train_state
from ddpm_jax.train import jitted_train_step
from ddpm_jax.convert import params_to_torch


def _compile(jitted, *args) -> tuple[object, dict]:
    """AOT-compiles ``jitted`` for ``args``; times tracing+lowering and XLA compilation."""
    start = time.perf_counter()
    lowered = jitted.lower(*args)
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    compiled_at = time.perf_counter()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost  # a list of one dict in older JAX
    memory = compiled.memory_analysis()
    info = {"compile_method": "AOT: jit(...).lower(...).compile()",
            "lower_s": lowered_at - start, "compile_s": compiled_at - lowered_at,
            "xla_flops": (cost or {}).get("flops"),
            "xla_temp_mb": memory.temp_size_in_bytes / MIB if memory else None}
    return compiled, info


class DeviceCounters:
    """Accelerator memory in use. JAX cannot reset its peak, so that one is process-wide."""

    kind = "accelerator memory in use (peak: process-wide so far, JAX cannot reset it)"

    def __init__(self, device):
        self.device = device

    def _stats(self) -> dict:
        return self.device.memory_stats() or {}

    def current(self) -> int:
        return self._stats().get("bytes_in_use", 0)

    def peak(self) -> int:
        return self._stats().get("peak_bytes_in_use", 0)

    def reset_peak(self) -> None:
        pass

    def release(self) -> None:
        pass


class JaxBackend:
    def __init__(self, n_steps: int, seed: int):
        self.device = jax.devices()[0]
        self.n_steps = n_steps
        self.ddpm = DDPM(n_steps=n_steps)
        self.key = jax.random.key(seed)
        self.seed = seed
        # The weights of every workload: create_train_state(self.key, ...) draws the same.
        self.params = self.ddpm.init(self.key)

    def describe(self) -> dict:
        return {"device": self.device.platform, "device_kind": self.device.device_kind,
                "jax_default_matmul_precision":
                    jax.config.jax_default_matmul_precision or "default (not set)",
                "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}

    def save_weights(self, path: str) -> None:
        """The weights as the torch UNet's state_dict (numpy arrays), for the loss check."""
        np.savez(path, **params_to_torch(self.params, prefix=""))

    def reference_loss(self, batch: Batch) -> float:
        return float(self.ddpm.loss(self.params, batch.x0, batch.t, batch.eta))

    def sync(self, out) -> None:
        jax.block_until_ready(out)

    def memory_probe(self) -> PeakMemory:
        return PeakMemory(RssCounters() if self.device.platform == "cpu" else DeviceCounters(self.device))

    def build(self, part: str, size: int, variant: str) -> Workload:
        if variant != "jit":
            raise ValueError(f"JAX has no variant {variant!r}")
        return getattr(self, f"_{part}")(size)

    def _train(self, batch_size: int) -> Workload:
        state = create_train_state(self.key, self.ddpm)
        x0 = jnp.asarray(make_batch(batch_size, self.n_steps, self.seed).x0)
        step, info = _compile(jitted_train_step, state, x0, self.key)

        def call():
            nonlocal state  # donated at each step
            state, loss = step(state, x0, self.key)
            return loss  # ready only once the whole step (the update included) has run

        return Workload(call, info)

    def _forward(self, batch_size: int) -> Workload:
        batch = make_batch(batch_size, self.n_steps, self.seed)
        x, t = jnp.asarray(batch.x0), jnp.asarray(batch.t)
        forward, info = _compile(jax.jit(self.ddpm.backward), self.params, x, t)
        return Workload(lambda: forward(self.params, x, t), info)

    def _sample(self, n_images: int) -> Workload:
        # DDPM.sample is one jitted lax.scan; wrapping it in jit lets it be compiled ahead.
        def sample(params, key):
            return self.ddpm.sample(params, key, n_samples=n_images)

        run, info = _compile(jax.jit(sample), self.params, self.key)
        info["xla_flops"] = None  # cost analysis counts a scan's body once, not T times
        return Workload(lambda: run(self.params, self.key), info)

    def _gemm(self, n: int) -> Workload:
        a, b = (jax.random.normal(k, (n, n), jnp.float32) for k in jax.random.split(self.key))
        matmul, info = _compile(jax.jit(jnp.matmul), a, b)
        return Workload(lambda: matmul(a, b), info)
