"""The framework-free epoch loop: shuffling, batches, progress, metrics, checkpoint policy.

Each framework supplies one function that trains on a batch and one that saves a
checkpoint; this loop decides when, and keeps the tutorial's rule: the checkpoint of
the epoch with the lowest mean loss is kept as ``best``, next to ``latest``.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from ddpm_io.datasets import scale_images
from ddpm_io.plots import save_loss_plot
from ddpm_io.runs import RunDir


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoints are left untouched."""


def epoch_batches(n_images: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """Shuffled indices of one epoch as (n_batches, batch_size).

    The last short batch is dropped, so every step has the same shape and the jitted
    step compiles once. The order depends only on (seed, epoch), so a resumed run sees
    the same batches as an uninterrupted one.
    """
    n_batches = n_images // batch_size
    if n_batches == 0:
        raise ValueError(f"{n_images} images are fewer than one batch of {batch_size}")
    order = np.random.default_rng([seed, epoch]).permutation(n_images)
    return order[: n_batches * batch_size].reshape(n_batches, batch_size)


def fit(
    images: np.ndarray,
    *,
    train_batch: Callable[[np.ndarray], Any],
    save_checkpoint: Callable[[str, dict], None],
    run: RunDir,
    epochs: int,
    batch_size: int,
    seed: int,
    start_epoch: int = 0,
    best_loss: float = math.inf,
    progress: bool = True,
) -> list[dict]:
    """Trains from ``start_epoch`` up to ``epochs`` and returns this call's epoch records.

    ``images``: uint8 (N, 28, 28, 1), scaled here to [-1, 1].
    ``train_batch(x)``: one optimizer step on float32 NHWC ``x``; returns the batch loss
    (anything ``float()`` accepts; it is read once per epoch and for the progress bar).
    ``save_checkpoint(name, info)``: writes the framework's checkpoint ``name`` ("best" or
    "latest") with ``info`` (epoch, best_loss) stored beside the weights.
    On Ctrl-C the weights reached so far are saved as ``latest`` before re-raising.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    data = scale_images(images)
    if start_epoch and progress:
        tqdm.write(f"resuming after epoch {start_epoch} (best mean loss so far {best_loss:.5f})")
    history = []
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, epochs):
            batches = epoch_batches(len(data), batch_size, seed, epoch)
            start = time.perf_counter()
            losses = []
            bar = tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress,
                       unit="batch", leave=False)
            for i, index in enumerate(bar):
                losses.append(train_batch(data[index]))
                if i % 10 == 0:
                    bar.set_postfix(loss=f"{float(losses[-1]):.4f}")
            mean_loss = float(np.mean([float(l) for l in losses]))
            seconds = time.perf_counter() - start
            if not math.isfinite(mean_loss):
                raise TrainingDiverged(
                    f"mean loss of epoch {epoch + 1} is {mean_loss}; the checkpoints of "
                    f"earlier epochs in {run.path} are kept. Try a lower learning rate."
                )
            is_best = mean_loss < best_loss
            best_loss = min(best_loss, mean_loss)
            info = {"epoch": epoch + 1, "best_loss": best_loss}
            save_checkpoint("latest", info)
            if is_best:
                save_checkpoint("best", info)
            record = {
                "epoch": epoch + 1,
                "loss": mean_loss,
                "best": is_best,
                "steps": len(batches),
                "seconds": round(seconds, 3),
                "images_per_s": round(len(batches) * batch_size / seconds, 1),
            }
            run.append_metrics(record)
            history.append(record)
            save_loss_plot(run.loss_plot, run.read_metrics())
            if progress:
                tqdm.write(f"epoch {epoch + 1}/{epochs}: loss {mean_loss:.5f}"
                           f"{' (best)' if is_best else ''}, {record['images_per_s']} img/s")
    except KeyboardInterrupt:
        try:
            save_checkpoint("latest", {"epoch": epoch, "best_loss": best_loss, "interrupted": True})
            tqdm.write(f"interrupted: weights saved to {run.path} as 'latest' (resume with --resume)")
        except Exception as e:  # noqa: BLE001 - the interrupt may have hit mid-step
            tqdm.write(f"interrupted mid-step, the last finished epoch's checkpoint is kept ({e})")
        raise
    return history
