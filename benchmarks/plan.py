"""What one benchmark run measures: the parts, their sizes, and how often (framework-free)."""

from __future__ import annotations

import dataclasses

PARTS = ("gemm", "train", "forward", "sample")
FRAMEWORKS = ("jax", "torch")
# Variants of each framework, in report order. torch.compile is tried on the parts where
# one network call is the unit of work; sampling is a Python loop of 1000 such calls.
VARIANTS = {"jax": ("jit",), "torch": ("eager", "compile")}
COMPILED_PARTS = ("train", "forward")


@dataclasses.dataclass(frozen=True)
class Plan:
    quick: bool
    n_steps: int  # T of the DDPM, for every part (sampling runs all T steps)
    sizes: dict[str, tuple[int, ...]]  # part -> batch sizes (GEMM: matrix size n for n^3)
    repeats: int  # timed rounds of gemm, train and forward
    sample_repeats: int  # timed rounds of sampling, the slow part
    warmup_calls: int  # untimed calls before the first round (sampling gets none)
    min_sample_s: float  # each timed sample repeats the call until it lasts about this long
    parts: tuple[str, ...] = PARTS
    frameworks: tuple[str, ...] = FRAMEWORKS
    torch_compile: bool = True
    loss_batch: int = 16  # images in the cross-framework loss check
    seed: int = 0

    def rounds(self, part: str) -> int:
        return self.sample_repeats if part == "sample" else self.repeats

    def warmup(self, part: str) -> int:
        # A sampling run is T network calls: the JAX sampler is compiled ahead of time and
        # a whole untimed run would double the longest part of the benchmark.
        return 0 if part == "sample" else self.warmup_calls

    def contestants(self, part: str) -> list[tuple[str, str]]:
        """(framework, variant) pairs measured on ``part``, in report order."""
        return [(framework, variant) for framework in self.frameworks
                for variant in VARIANTS[framework]
                if variant != "compile" or (self.torch_compile and part in COMPILED_PARTS)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def full_plan(**overrides) -> Plan:
    """The real benchmark: about 20-25 minutes on a quiet 2-core CPU."""
    plan = Plan(quick=False, n_steps=1000,
                sizes={"gemm": (1024, 4096), "train": (32, 128, 512), "forward": (16, 100),
                       "sample": (16, 100)},
                repeats=7, sample_repeats=2, warmup_calls=2, min_sample_s=1.0)
    return dataclasses.replace(plan, **overrides)


def quick_plan(**overrides) -> Plan:
    """A smoke run in well under a minute of work: tiny sizes, T = 20, two rounds.

    Its numbers are not comparable with anything, the full run's included.
    """
    plan = Plan(quick=True, n_steps=20,
                sizes={"gemm": (256,), "train": (8,), "forward": (8,), "sample": (4,)},
                repeats=2, sample_repeats=2, warmup_calls=1, min_sample_s=0.0,
                torch_compile=False, loss_batch=8)
    return dataclasses.replace(plan, **overrides)
