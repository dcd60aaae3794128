"""The orchestrator: one worker process per framework, a loss check, then interleaved rounds.

Framework-free: JAX and PyTorch are imported only by the workers, so they never share a
process and each keeps its own threads and memory. Both workers stay alive for the whole
run (each compiles once), and every workload is timed in rounds that alternate between
them, rotating who goes first, so that drift in the machine's speed hits all alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import flops
from benchmarks.measure import summarize
from benchmarks.plan import Plan

LOSS_TOLERANCE = 1e-4  # relative difference of the two frameworks' loss on the same inputs
PACKAGES = ("jax", "jaxlib", "flax", "optax", "torch", "numpy", "matplotlib")


def log(message: str) -> None:
    print(f"[ddpm-bench] {message}", file=sys.stderr, flush=True)


class WorkerError(RuntimeError):
    """A request the worker could not carry out (the worker itself is still alive)."""


def _cold_compile_env(framework: str, scratch: Path) -> dict[str, str]:
    """Compile times are measured cold: no persistent cache from an earlier run may answer."""
    if framework == "torch":  # inductor's kernel and graph caches live on disk
        return {"TORCHINDUCTOR_CACHE_DIR": str(scratch / "torchinductor")}
    return {"JAX_ENABLE_COMPILATION_CACHE": "false"}


class WorkerProcess:
    """A ``benchmarks.worker`` subprocess; its stderr is passed through to ours."""

    def __init__(self, framework: str, plan: Plan, scratch: Path):
        self.framework = framework
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", framework, str(plan.n_steps), str(plan.seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, **_cold_compile_env(framework, scratch)})

    def request(self, op: str, **args):
        self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.framework} worker died (exit code {self.process.wait()})")
        reply = json.loads(line)
        if not reply["ok"]:
            raise WorkerError(reply["error"])
        return reply["result"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.stdin.close()  # end of requests: the worker exits
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_environment(workers: dict[str, WorkerProcess]) -> dict:
    described = {framework: w.request("describe") for framework, w in workers.items()}
    accelerators = {d.get("device_name") or d.get("device_kind") for d in described.values()
                    if d["device"] != "cpu"}
    devices = {framework: d["device"] for framework, d in described.items()}
    env = {
        "machine": {"cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
                    "accelerator": ", ".join(sorted(accelerators)) or None,
                    "platform": platform.platform()},
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "workers": described,
        "compile_caches": "cold: JAX's persistent compilation cache off, torch inductor's cache "
                          "in a new empty folder",
        "command": sys.argv,
    }
    if len({d if d == "cpu" else "accelerator" for d in devices.values()}) > 1:
        env["warning"] = f"the frameworks ran on different devices ({devices}): not comparable"
    return env


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_tag(environment: dict) -> str:
    """``cpu-2core``, ``gpu-h200``, ``tpu-v5-lite``: the default results folder's name."""
    accelerator = environment["machine"]["accelerator"]
    if accelerator is None:
        return f"cpu-{environment['machine']['cpu_count']}core"
    slug = re.sub(r"[^a-z0-9]+", "-", accelerator.lower().replace("nvidia", "")).strip("-")
    return slug if slug.startswith("tpu") else f"gpu-{slug}"


def check_loss(workers: dict[str, WorkerProcess], plan: Plan, scratch: Path) -> dict:
    """Both frameworks' loss on the same weights (JAX's, converted) and the same x0, t, eta."""
    if set(workers) != {"jax", "torch"}:
        return {"status": "skipped", "reason": "needs both frameworks"}
    weights = str(scratch / "weights.npz")
    workers["jax"].request("save_weights", path=weights)
    workers["torch"].request("load_weights", path=weights)
    losses = {framework: w.request("reference_loss", n_images=plan.loss_batch)
              for framework, w in workers.items()}
    difference = abs(losses["jax"] - losses["torch"]) / abs(losses["torch"])
    return {"status": "passed" if difference <= LOSS_TOLERANCE else "failed",
            "loss": losses, "relative_difference": difference, "tolerance": LOSS_TOLERANCE,
            "n_images": plan.loss_batch,
            "inputs": "JAX's initial weights (converted by ddpm_jax.convert.params_to_torch); "
                      "x0, t, eta from one seeded numpy generator"}


def label(framework: str, variant: str) -> str:
    return f"{framework}/{variant}"


@dataclasses.dataclass
class Contestant:
    """One framework variant's part in a workload's rounds."""


    framework: str
    variant: str
    worker: WorkerProcess
    setup: dict
    times: list[float] = dataclasses.field(default_factory=list)


def _compile_time(contestant: Contestant, steady_s: float) -> dict | None:
    setup = contestant.setup
    if "compile_s" in setup:  # JAX, compiled ahead of time
        return {"method": setup["compile_method"], "seconds": setup["lower_s"] + setup["compile_s"],
                "lower_s": setup["lower_s"], "compile_s": setup["compile_s"]}
    if contestant.variant == "compile" and setup["warmup_s"]:  # torch.compile works lazily
        return {"method": "first call minus steady-state median",
                "seconds": setup["warmup_s"][0] - steady_s}
    return None


def _record(part: str, size: int, plan: Plan, contestant: Contestant, memory: dict) -> dict:
    images, flop = flops.work_per_call(part, size, plan.n_steps)
    seconds = summarize(contestant.times)
    record = {"part": part, "size": size, "framework": contestant.framework,
              "variant": contestant.variant,
              "calls_per_sample": contestant.setup["calls_per_sample"],
              "seconds_per_call": seconds, "images_per_call": images, "flop_per_call": flop,
              "gflops": {"median": flop / seconds["median"] / 1e9, "best": flop / seconds["min"] / 1e9},
              "compile": _compile_time(contestant, seconds["median"]),
              "setup": contestant.setup, "memory": memory}
    if images:
        record["images_per_s"] = {"median": images / seconds["median"],
                                  "min": images / seconds["max"], "max": images / seconds["min"]}
    return record


def measure_workload(plan: Plan, workers: dict[str, WorkerProcess], part: str, size: int,
                     unavailable: dict[str, str]) -> list[dict]:
    """Prepares every contestant, times them in alternating rounds, collects their memory."""
    contestants = []
    for framework, variant in plan.contestants(part):
        name = label(framework, variant)
        if name in unavailable:
            continue
        log(f"{part} {size}: preparing {name}")
        try:
            setup = workers[framework].request(
                "prepare", part=part, size=size, variant=variant,
                warmup_calls=plan.warmup(part), min_sample_s=plan.min_sample_s)
        except WorkerError as e:
            unavailable[name] = f"{part} {size}: {e}"
            log(f"{name} is not available: {e}")
            continue
        contestants.append(Contestant(framework, variant, workers[framework], setup))
    for round_ in range(plan.rounds(part)):
        shift = round_ % max(1, len(contestants))
        for c in contestants[shift:] + contestants[:shift]:
            c.times += c.worker.request("measure", variant=c.variant, samples=1)
    records = [_record(part, size, plan, c, c.worker.request("finish", variant=c.variant))
               for c in contestants]
    for r in records:
        seconds = r["seconds_per_call"]
        log(f"{part} {size}: {label(r['framework'], r['variant'])} {seconds['median']:.4g} s per call "
            f"(median of {seconds['n']}, min {seconds['min']:.4g}, max {seconds['max']:.4g}), "
            f"{r['gflops']['median']:.3g} GFLOP/s")
    return records


def _xla_flops_per_image(records: list[dict]) -> dict:
    """XLA's own count (cost_analysis) of the compiled train step and forward pass, per image."""
    return {part: {r["size"]: r["setup"]["xla_flops"] / r["size"] for r in records
                   if r["part"] == part and r["framework"] == "jax" and r["setup"].get("xla_flops")}
            for part in ("train", "forward")}


def _add_gemm_share(records: list[dict]) -> dict | None:
    """The machine's best measured GEMM rate, and each figure as a percentage of it."""
    gemm = [r for r in records if r["part"] == "gemm"]
    if not gemm:
        return None
    best = max(gemm, key=lambda r: r["gflops"]["best"])
    peak = best["gflops"]["best"]
    for r in records:
        if r["part"] != "gemm":
            r["percent_of_gemm_peak"] = 100 * r["gflops"]["median"] / peak
    return {"gflops": peak, "framework": best["framework"], "n": best["size"],
            "rule": "best single sample over frameworks and sizes (float32, n x n x n)"}


def run_benchmark(plan: Plan) -> dict:
    """Runs the plan; the loss check must pass before anything is timed."""
    started = time.time()
    results = {"benchmark": "ddpm-bench", "mode": "quick" if plan.quick else "full",
               "comparable": not plan.quick,
               "started": datetime.datetime.fromtimestamp(started).astimezone().isoformat(),
               "plan": plan.to_dict()}
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ddpm-bench-")))
        # Both start at once: their imports overlap, nothing is timed yet.
        workers = {framework: stack.enter_context(WorkerProcess(framework, plan, scratch))
                   for framework in plan.frameworks}
        results["environment"] = describe_environment(workers)
        results["loss_check"] = check_loss(workers, plan, scratch)
        log(f"loss check: {json.dumps(results['loss_check'])}")
        if results["loss_check"]["status"] == "failed":
            return results
        unavailable: dict[str, str] = {}
        records = [record for part in plan.parts for size in plan.sizes[part]
                   for record in measure_workload(plan, workers, part, size, unavailable)]
    results["gemm_peak"] = _add_gemm_share(records)
    results["flop_count"] = {**flops.describe(), "xla_cost_analysis_per_image": _xla_flops_per_image(records)}
    results["unavailable"] = unavailable
    results["results"] = records
    results["duration_s"] = time.time() - started
    return results
