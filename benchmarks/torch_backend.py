"""The PyTorch side: ddpm_torch's train step, forward pass and sampler, eager or torch.compile'd.

The device is CUDA when there is one, else the CPU. torch.compile compiles lazily, so its
compile time is the first call minus the steady-state time (the orchestrator works it out).
"""

from __future__ import annotations

import copy
import os

import numpy as np
import torch

from benchmarks.measure import PeakMemory, RssCounters
from benchmarks.workload import Batch, Workload, make_batch, nchw
from ddpm_torch import DDPM, UNet, train_step
from ddpm_torch.train import TrainState, make_optimizer


class CudaCounters:
    kind = "CUDA memory allocated by torch"

    def current(self) -> int:
        return torch.cuda.memory_allocated()

    def peak(self) -> int:
        return torch.cuda.max_memory_allocated()

    def reset_peak(self) -> None:
        torch.cuda.reset_peak_memory_stats()

    def release(self) -> None:
        torch.cuda.synchronize()


class TorchBackend:
    def __init__(self, n_steps: int, seed: int):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.n_steps = n_steps
        self.seed = seed
        torch.manual_seed(seed)
        # Replaced by the JAX weights when the cross-framework loss check runs.
        self.network = UNet(n_steps)

    def describe(self) -> dict:
        cuda = self.device.type == "cuda"
        return {"device": self.device.type,
                "device_name": torch.cuda.get_device_name(self.device) if cuda else None,
                "torch_num_threads": torch.get_num_threads(),
                "torch_num_interop_threads": torch.get_num_interop_threads(),
                "float32_matmul_precision": torch.get_float32_matmul_precision(),
                "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32 if cuda else None,
                "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", ""),
                "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", "")}

    def load_weights(self, path: str) -> None:
        with np.load(path) as arrays:
            state = {k: torch.from_numpy(arrays[k]) for k in arrays.files}
        self.network.load_state_dict(state)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.device)

    def _ddpm(self, variant: str) -> DDPM:
        """A DDPM on a fresh copy of the reference weights."""
        network = copy.deepcopy(self.network)
        if variant == "compile":
            network = torch.compile(network, dynamic=False)
        elif variant != "eager":
            raise ValueError(f"PyTorch has no variant {variant!r}")
        return DDPM(network, self.n_steps, device=self.device)

    def reference_loss(self, batch: Batch) -> float:
        ddpm = self._ddpm("eager")
        with torch.no_grad():
            return float(ddpm.loss(self._tensor(nchw(batch.x0)), self._tensor(batch.t.astype(np.int64)),
                                   self._tensor(nchw(batch.eta))))

    def sync(self, out) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def memory_probe(self) -> PeakMemory:
        return PeakMemory(CudaCounters() if self.device.type == "cuda" else RssCounters())

    def _generator(self) -> torch.Generator:
        return torch.Generator(self.device).manual_seed(self.seed)

    def build(self, part: str, size: int, variant: str) -> Workload:
        if part == "gemm":
            return self._gemm(size)
        return getattr(self, f"_{part}")(self._ddpm(variant), size)

    def _train(self, ddpm: DDPM, batch_size: int) -> Workload:
        state = TrainState(ddpm, make_optimizer(ddpm))
        x0 = self._tensor(nchw(make_batch(batch_size, self.n_steps, self.seed).x0))
        generator = self._generator()
        return Workload(lambda: train_step(state, x0, generator))

    def _forward(self, ddpm: DDPM, batch_size: int) -> Workload:
        batch = make_batch(batch_size, self.n_steps, self.seed)
        x, t = self._tensor(nchw(batch.x0)), self._tensor(batch.t.astype(np.int64))

        @torch.no_grad()
        def call():
            return ddpm.backward(x, t)

        return Workload(call)

    def _sample(self, ddpm: DDPM, n_images: int) -> Workload:
        generator = self._generator()
        return Workload(lambda: ddpm.sample(n_samples=n_images, generator=generator))

    def _gemm(self, n: int) -> Workload:
        generator = self._generator()
        a, b = (torch.randn(n, n, generator=generator, device=self.device) for _ in range(2))
        return Workload(lambda: a @ b)
