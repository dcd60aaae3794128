"""One framework's benchmark process: ``python -m benchmarks.worker {jax,torch} N_STEPS SEED``.

It answers the orchestrator's requests, one JSON object per line each way: a request
``{"op": ..., **args}`` on stdin, a reply ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": ...}`` on the original stdout. Whatever a library prints goes
to stderr, so it cannot corrupt a reply.

The timing loop lives here, once, for both frameworks; a backend only builds workloads.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import sys
import time
import traceback

from benchmarks.measure import PeakMemory, time_calls
from benchmarks.workload import Workload, make_batch


def load_backend(framework: str, n_steps: int, seed: int):
    if framework == "jax":
        from benchmarks.jax_backend import JaxBackend
        return JaxBackend(n_steps, seed)
    if framework == "torch":
        from benchmarks.torch_backend import TorchBackend
        return TorchBackend(n_steps, seed)
    raise ValueError(f"unknown framework {framework!r}")


@dataclasses.dataclass
class Prepared:
    workload: Workload
    calls_per_sample: int
    memory: PeakMemory


class Worker:
    OPERATIONS = ("describe", "save_weights", "load_weights", "reference_loss", "prepare",
                  "measure", "finish")

    def __init__(self, backend):
        self.backend = backend
        self.prepared: dict[str, Prepared] = {}  # by variant: eager and compiled take turns

    def describe(self) -> dict:
        return {"python": platform.python_version(), "pid": os.getpid(),
                "cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
                **self.backend.describe()}

    def save_weights(self, path: str) -> None:
        self.backend.save_weights(path)

    def load_weights(self, path: str) -> None:
        self.backend.load_weights(path)

    def reference_loss(self, n_images: int) -> float:
        return self.backend.reference_loss(make_batch(n_images, self.backend.n_steps, self.backend.seed))

    def prepare(self, part: str, size: int, variant: str, warmup_calls: int,
                min_sample_s: float) -> dict:
        """Builds (and for JAX compiles) a workload, then runs its untimed warm-up calls.

        Each timed sample will repeat the call until it lasts about ``min_sample_s``,
        judged by the fastest warm-up call.
        """
        memory = self.backend.memory_probe()
        memory.begin()
        start = time.perf_counter()
        workload = self.backend.build(part, size, variant)
        setup_s = time.perf_counter() - start
        warmup_s = [time_calls(workload.call, 1, self.backend.sync) for _ in range(warmup_calls)]
        calls = max(1, math.ceil(min_sample_s / min(warmup_s))) if warmup_s else 1
        memory.steady()
        self.prepared[variant] = Prepared(workload, calls, memory)
        return {"setup_s": setup_s, "warmup_s": warmup_s, "calls_per_sample": calls, **workload.info}

    def measure(self, variant: str, samples: int) -> list[float]:
        """Seconds per call, one figure per timed sample."""
        p = self.prepared[variant]
        with p.memory.running():
            return [time_calls(p.workload.call, p.calls_per_sample, self.backend.sync)
                    for _ in range(samples)]

    def finish(self, variant: str) -> dict:
        """The workload's memory figures; then lets it go."""
        return self.prepared.pop(variant).memory.read()


def _reply_channel():
    """The original stdout, for replies only; fd 1 now points at stderr."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def main(argv: list[str] | None = None) -> None:
    framework, n_steps, seed = argv if argv is not None else sys.argv[1:]
    replies = _reply_channel()
    worker = Worker(load_backend(framework, int(n_steps), int(seed)))
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        try:
            if op not in Worker.OPERATIONS:
                raise ValueError(f"unknown operation {op!r}")
            reply = {"ok": True, "result": getattr(worker, op)(**request)}
        except Exception as e:  # noqa: BLE001 - reported to the orchestrator, which decides
            traceback.print_exc()
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        replies.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
