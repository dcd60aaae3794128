"""The quick benchmark end to end: both worker processes, the loss check, every part, every output.

The full benchmark is not part of the test suite (about 20 minutes); see benchmarks/README.md.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.plan import PARTS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    # One OpenMP thread for torch: while other processes keep the cores busy, its threads
    # wait on each other at every op (seconds per call). Quick numbers mean nothing anyway.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-5000:]
    return out, json.loads((out / "results.json").read_text())


def test_quick_run_measures_every_part_of_both_frameworks(quick_run):
    _, results = quick_run
    assert results["mode"] == "quick" and results["comparable"] is False
    check = results["loss_check"]
    assert check["status"] == "passed" and check["relative_difference"] <= 1e-4
    env = results["environment"]
    assert env["machine"]["cpu_count"] >= 1 and env["machine"]["cpu_model"]
    assert all(env["packages"][name] for name in ("jax", "jaxlib", "flax", "optax", "torch", "numpy"))
    assert env["workers"]["torch"]["torch_num_threads"] == 1
    assert "XLA_FLAGS" in env["workers"]["jax"]

    assert results["unavailable"] == {}
    measured = {(r["part"], r["framework"], r["variant"]) for r in results["results"]}
    assert measured == {(part, *contestant) for part in PARTS
                        for contestant in (("jax", "jit"), ("torch", "eager"))}
    for r in results["results"]:
        seconds = r["seconds_per_call"]
        assert seconds["n"] == 2 and 0 < seconds["min"] <= seconds["median"] <= seconds["max"]
        assert r["gflops"]["median"] > 0 and r["memory"]["run_peak_mb"] >= 0
        assert (r["part"] == "gemm") == ("percent_of_gemm_peak" not in r)
        if r["framework"] == "jax":
            assert r["compile"]["seconds"] > 0
    assert results["gemm_peak"]["gflops"] > 0


def test_flop_count_matches_design_and_xla(quick_run):
    _, results = quick_run
    count = results["flop_count"]
    assert abs(count["forward_per_image"] - 49.9e6) < 0.1e6  # DESIGN.md section 2
    assert count["train_per_image"] == 3 * count["forward_per_image"]
    # XLA skips the taps that fall on padding: a little lower, same order.
    for part, analytic in (("forward", count["forward_per_image"]), ("train", count["train_per_image"])):
        (xla,) = count["xla_cost_analysis_per_image"][part].values()
        assert 0.85 * analytic < xla < analytic


def test_quick_run_writes_the_table_and_the_plot(quick_run):
    out, _ = quick_run
    table = (out / "results.md").read_text()
    assert "Quick mode" in table and "## JAX / PyTorch" in table and "## Training step" in table
    assert (out / "train_throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
