"""``ddpm-bench`` / ``python -m benchmarks``: JAX vs PyTorch on the same DDPM, one run.

Writes results.json, results.md and train_throughput.png to ``--out`` (default:
benchmarks/results/<machine tag>, with ``-quick`` appended in quick mode).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.plan import FRAMEWORKS, PARTS, full_plan, quick_plan
from benchmarks.report import write_outputs
from benchmarks.run import log, machine_tag, run_benchmark

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _names(allowed: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)} (comma-separated)")
        return tuple(n for n in allowed if n in names)  # in the benchmark's order
    return parse


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ddpm-bench", description="Benchmarks ddpm_jax against ddpm_torch: the same model "
        "and the same work, each framework in its own process, in one run.")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run under a minute: tiny sizes, T=20, 2 rounds; not comparable")
    parser.add_argument("--out", type=Path,
                        help="folder for the results (default: benchmarks/results/<machine tag>[-quick])")
    parser.add_argument("--only", type=_names(PARTS), metavar="PARTS",
                        help=f"parts to measure, comma-separated from {','.join(PARTS)} (default: all)")
    parser.add_argument("--frameworks", type=_names(FRAMEWORKS), metavar="NAMES",
                        help="jax, torch or both, comma-separated (default: both; the loss check needs both)")
    parser.add_argument("--repeats", type=_positive, metavar="N",
                        help="timed rounds of gemm, train and forward (default: 7; quick: 2)")
    parser.add_argument("--sample-repeats", type=_positive, metavar="N",
                        help="timed rounds of sampling, the slow part (default: 2)")
    parser.add_argument("--torch-compile", action=argparse.BooleanOptionalAction, default=None,
                        help="also measure torch.compile on train and forward (default: on; quick: off)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {"parts": args.only, "frameworks": args.frameworks, "repeats": args.repeats,
                 "sample_repeats": args.sample_repeats, "torch_compile": args.torch_compile}
    plan = (quick_plan if args.quick else full_plan)(
        **{k: v for k, v in overrides.items() if v is not None})
    results = run_benchmark(plan)
    tag = machine_tag(results["environment"])
    out = args.out or RESULTS_DIR / (tag + ("-quick" if plan.quick else ""))
    for path in write_outputs(results, out, tag):
        print(path)
    if results["loss_check"]["status"] == "failed":
        log("the frameworks disagree on the loss: nothing was timed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
