"""The loss curve of a run, drawn with matplotlib (headless)."""

from __future__ import annotations

import os
from pathlib import Path


def save_loss_plot(path: str | os.PathLike, records: list[dict]) -> Path:
    """Plots the mean loss of each epoch from metrics records ({"epoch", "loss"}) as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot([r["epoch"] for r in records], [r["loss"] for r in records], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss (MSE)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path
