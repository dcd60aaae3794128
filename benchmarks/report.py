"""A run's outputs: results.json (everything), results.md (tables, JAX / PyTorch ratios), a plot."""

from __future__ import annotations

import json
from pathlib import Path

LABELS = {("jax", "jit"): "JAX (jit)", ("torch", "eager"): "PyTorch (eager)",
          ("torch", "compile"): "PyTorch (torch.compile)"}
SECTIONS = {  # part -> (title, what the size is)
    "train": ("Training step", "batch"),
    "forward": ("Forward pass (one UNet call, latency)", "batch"),
    "sample": ("Sampling: the whole reverse process", "images"),
    "gemm": ("float32 GEMM, n x n x n (the reference rate)", "n"),
}
PLOT = "train_throughput.png"


def _label(record: dict) -> str:
    return LABELS[record["framework"], record["variant"]]


def _duration(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds >= 1 else f"{seconds * 1e3:.3g} ms"


def _number(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _header(results: dict) -> list[str]:
    env, plan = results["environment"], results["plan"]
    machine, workers = env["machine"], env["workers"]
    lines = []
    if results["mode"] == "quick":
        lines += [(f"> **Quick mode**: tiny sizes, T = {plan['n_steps']}, {plan['repeats']} rounds. "
                   "It shows that the benchmark runs; its numbers are not comparable with anything."), ""]
    lines.append(f"- Machine: {machine['cpu_model']}, {machine['cpu_count']} CPUs"
                 + (f", {machine['accelerator']}" if machine["accelerator"] else ""))
    if "jax" in workers:
        w = workers["jax"]
        lines.append(f"- JAX: device {w['device']} ({w['device_kind']}), matmul precision "
                     f"{w['jax_default_matmul_precision']}, XLA_FLAGS=`{w['XLA_FLAGS']}`")
    if "torch" in workers:
        w = workers["torch"]
        lines.append(f"- PyTorch: device {w['device']}{' (' + w['device_name'] + ')' if w['device_name'] else ''}, "
                     f"{w['torch_num_threads']} intra-op / {w['torch_num_interop_threads']} inter-op threads, "
                     f"float32 matmul precision {w['float32_matmul_precision']}, "
                     f"OMP_NUM_THREADS=`{w['OMP_NUM_THREADS']}`")
    lines.append("- Versions: python " + env["python"] + ", "
                 + ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v))
    if "warning" in env:
        lines.append(f"- **Warning**: {env['warning']}")
    check = results["loss_check"]
    if check["status"] == "skipped":
        lines.append(f"- Loss check: skipped ({check['reason']})")
    else:
        lines.append(f"- Loss check ({check['n_images']} images, same weights, x0, t, eta): "
                     f"JAX {check['loss']['jax']:.6f}, PyTorch {check['loss']['torch']:.6f}, relative "
                     f"difference {check['relative_difference']:.1e} (tolerance {check['tolerance']:g}): "
                     f"**{check['status']}**")
    if "results" not in results:
        return lines
    count = results["flop_count"]
    xla = count["xla_cost_analysis_per_image"]
    xla_text = "; ".join(f"{part} " + ", ".join(f"{v / 1e6:.1f} (batch {size})" for size, v in sizes.items())
                         for part, sizes in xla.items() if sizes)
    lines.append(f"- FLOP count used for GFLOP/s: {count['forward_per_image'] / 1e6:.2f} MFLOP per image "
                 f"forward, {count['train_per_image'] / 1e6:.1f} MFLOP per image for a training step "
                 f"({count['train_rule']}); {count['source']}."
                 + (f" XLA's cost analysis, MFLOP per image: {xla_text}." if xla_text else ""))
    peak = results["gemm_peak"]
    if peak:
        lines.append(f"- GEMM reference: {peak['gflops']:.1f} GFLOP/s ({peak['framework']}, "
                     f"n = {peak['n']}; {peak['rule']})")
    sample = (f"repeats the call until it lasts at least {plan['min_sample_s']:g} s"
              if plan["min_sample_s"] > 0 else "is one call")
    lines.append(f"- Timing: median over {plan['repeats']} rounds ({plan['sample_repeats']} for sampling), "
                 "one timed sample per framework variant and round, the frameworks' processes taking "
                 f"turns; each sample {sample}, after {plan['warmup_calls']} untimed warm-up calls "
                 "(none for sampling); spread = min – max over the samples.")
    for label, reason in results["unavailable"].items():
        lines.append(f"- Not available: {label}: {reason.splitlines()[0]} (the JSON has the whole error)")
    return lines


def _ratio_table(records: list[dict]) -> list[str]:
    """JAX's throughput over each PyTorch variant's, per workload."""
    torch_variants = [v for f, v in LABELS if f == "torch"
                      and any(r["framework"] == f and r["variant"] == v for r in records)]
    rows = []
    for part in ("train", "forward", "sample"):
        for jax_record in (r for r in records if r["part"] == part and r["framework"] == "jax"):
            cells = []
            for variant in torch_variants:
                other = next((r for r in records if r["part"] == part and r["size"] == jax_record["size"]
                              and r["framework"] == "torch" and r["variant"] == variant), None)
                cells.append("–" if other is None else
                             f"{jax_record['images_per_s']['median'] / other['images_per_s']['median']:.2f}")
            rows.append(f"| {part} | {jax_record['size']} | " + " | ".join(cells) + " |")
    if not rows or not torch_variants:
        return []
    return ["## JAX / PyTorch", "",
            "Throughput ratio: JAX's images/s over PyTorch's (above 1: JAX is faster).", "",
            "| part | size | " + " | ".join(f"vs {LABELS['torch', v]}" for v in torch_variants) + " |",
            "|---|---|" + "---|" * len(torch_variants), *rows, ""]


def _part_table(records: list[dict], part: str) -> list[str]:
    rows = [r for r in records if r["part"] == part]
    if not rows:
        return []
    title, size_name = SECTIONS[part]
    lines = [f"## {title}", "",
             (f"| {size_name} | framework | time per call (median) | min – max | images/s | GFLOP/s "
              "| % of GEMM peak | memory during runs (MB) |"),
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        seconds = r["seconds_per_call"]
        rate = r.get("images_per_s")
        lines.append(f"| {r['size']} | {_label(r)} | {_duration(seconds['median'])} | "
                     f"{_duration(seconds['min'])} – {_duration(seconds['max'])} | "
                     f"{_number(rate and rate['median'], 4)} | {r['gflops']['median']:.3g} | "
                     f"{_number(r.get('percent_of_gemm_peak'), 2)} | {r['memory']['run_peak_mb']:.0f} |")
    return lines + [""]


def _compile_table(records: list[dict]) -> list[str]:
    rows = [r for r in records if r["compile"] is not None]
    if not rows:
        return []
    lines = ["## Compile time (apart from the figures above)", "",
             "| part | size | framework | compile (s) | method | memory while building (MB) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['part']} | {r['size']} | {_label(r)} | {r['compile']['seconds']:.2f} | "
                     f"{r['compile']['method']} | {r['memory']['setup_peak_mb']:.0f} |")
    return lines + [""]


def markdown(results: dict, tag: str) -> str:
    lines = [f"# DDPM benchmark, JAX vs PyTorch: {tag}", "", *_header(results), ""]
    records = results.get("results", [])
    lines += _ratio_table(records)
    for part in ("train", "forward", "sample", "gemm"):
        lines += _part_table(records, part)
    lines += _compile_table(records)
    memory_kinds = sorted({r["memory"]["kind"] for r in records})
    if memory_kinds:
        lines += ["Memory during runs: the largest rise during a workload's timed calls above what "
                  "the process held just before them (activations, scratch buffers). While building: "
                  "the peak rise during building, compiling and warm-up. What a workload holds "
                  "between calls is in the JSON (`held_mb`). Measured as "
                  + "; ".join(memory_kinds) + ".", ""]
    return "\n".join(lines)


def save_plot(results: dict, path: Path, tag: str) -> None:
    """Training throughput by batch size, one line per framework variant, min-max bars."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    train = [r for r in results["results"] if r["part"] == "train"]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for key, label in LABELS.items():
        rows = [r for r in train if (r["framework"], r["variant"]) == key]
        if not rows:
            continue
        rates = [r["images_per_s"] for r in rows]
        median = [x["median"] for x in rates]
        ax.errorbar([r["size"] for r in rows], median, marker="o", capsize=3, label=label,
                    yerr=[[m - x["min"] for m, x in zip(median, rates)],
                          [x["max"] - m for m, x in zip(median, rates)]])
    ax.set_xscale("log", base=2)
    sizes = sorted({r["size"] for r in train})
    ax.set_xticks(sizes, [str(size) for size in sizes])
    ax.minorticks_off()
    ax.set_xlabel("batch size")
    ax.set_ylabel("training throughput (images/s)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"DDPM training step, {tag}" + (" (quick: not comparable)" if results["mode"] == "quick" else ""))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(results: dict, out_dir: Path, tag: str) -> list[Path]:
    """Writes results.json and results.md, and the plot when training was measured."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "results.json", out_dir / "results.md"]
    paths[0].write_text(json.dumps(results, indent=2) + "\n")
    paths[1].write_text(markdown(results, tag))
    if any(r["part"] == "train" for r in results.get("results", [])):
        paths.append(out_dir / PLOT)
        save_plot(results, paths[-1], tag)
    return paths
