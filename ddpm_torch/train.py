"""Training: the train state, the update step, checkpoints, and the epoch loop.

The update step draws t and eta from an explicit ``torch.Generator`` (the counterpart
of the JAX key); its state is saved in each checkpoint, so a resumed run draws the same
noise as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ddpm_io.runs import RunDir, atomic_write_bytes
from ddpm_io.training import fit
from ddpm_torch.ddpm import DDPM

CHECKPOINT_SUFFIX = ".pt"


@dataclasses.dataclass
class TrainState:
    ddpm: DDPM
    optimizer: torch.optim.Optimizer
    step: int = 0


def make_optimizer(model: nn.Module, learning_rate: float = 1e-3) -> torch.optim.Adam:
    """Adam (torch defaults, no weight decay) on the trained weights; the frozen time table is left out."""
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=learning_rate)


def create_train_state(ddpm: DDPM, learning_rate: float = 1e-3, seed: int = 0) -> TrainState:
    """Re-initialises the network from ``seed`` and wraps it with a fresh optimizer.

    The weights are those of ``torch.manual_seed(seed)`` followed by building the
    tutorial's model on the CPU; the caller's global RNG state is left untouched.
    """
    if not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"learning rate must be positive, got {learning_rate}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        ddpm.network.cpu().reset_parameters()
    ddpm.network.to(ddpm.device)
    return TrainState(ddpm, make_optimizer(ddpm, learning_rate))


def noise_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of the training noise (t and eta) for ``seed``.

    Seeded from a stream derived from ``seed``, not with ``seed`` itself: the weights
    come from the global Mersenne Twister seeded with ``seed``, and a CPU generator
    seeded alike would replay the same numbers.
    """
    derived = np.random.SeedSequence([seed, 1]).generate_state(1, np.uint64)[0]
    return torch.Generator(device).manual_seed(int(derived))


def train_step(state: TrainState, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One Adam step on a batch x0 (N, 1, 28, 28) in [-1, 1]; returns the loss, detached.

    eta ~ N(0, I) and t ~ Uniform{0..T-1} are drawn from ``generator`` (in the tutorial's
    order); ``state`` is updated in place.
    """
    ddpm = state.ddpm
    eta = torch.randn(x0.shape, generator=generator, device=x0.device)
    t = torch.randint(0, ddpm.n_steps, (x0.shape[0],), generator=generator, device=x0.device)
    loss = ddpm.loss(x0, t, eta)
    state.optimizer.zero_grad()
    loss.backward()
    state.optimizer.step()
    state.step += 1
    return loss.detach()


def save_checkpoint(path: str | os.PathLike, state: TrainState, info: dict,
                    generator: torch.Generator | None = None) -> Path:
    """Writes weights, optimizer state, step, ``info`` (and the noise generator) as one file, atomically.

    ``"model"`` is the tutorial's state_dict (173 ``network.*`` keys).
    """
    record = {"model": state.ddpm.state_dict(), "optimizer": state.optimizer.state_dict(),
              "step": state.step, "info": info}
    if generator is not None:
        record["generator"] = generator.get_state()
    buffer = io.BytesIO()
    torch.save(record, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def read_checkpoint(path: str | os.PathLike):
    """The raw object stored at ``path``: a checkpoint record, or a bare state_dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch.load raises several types for bad bytes
        raise ValueError(f"{path} is not a readable checkpoint ({e})") from e


def load_model_state(path: str | os.PathLike) -> dict:
    """The DDPM state_dict stored at ``path``, for ``DDPM.load_state_dict``.

    Accepts a checkpoint written by ``save_checkpoint`` or a bare state_dict, such as
    the tutorial's ``torch.save(ddpm.state_dict(), path)`` writes.
    """
    record = read_checkpoint(path)
    state_dict = record.get("model", record) if isinstance(record, dict) else None
    if not isinstance(state_dict, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise ValueError(f"{path} holds neither a checkpoint nor a state_dict")
    return state_dict


def restore_train_state(path: str | os.PathLike, state: TrainState,
                        generator: torch.Generator | None = None) -> tuple[TrainState, dict]:
    """Loads a checkpoint into ``state`` (and ``generator``, if saved); returns (state, info)."""
    record = read_checkpoint(path)
    if not isinstance(record, dict) or "optimizer" not in record:
        raise ValueError(f"{path} has no optimizer state to resume from")
    state.ddpm.load_state_dict(record["model"])
    state.optimizer.load_state_dict(record["optimizer"])
    state.step = int(record["step"])
    if generator is not None and "generator" in record:
        generator.set_state(record["generator"])
    return state, record["info"]


def train(
    ddpm: DDPM,
    images: np.ndarray,
    run_dir: str | os.PathLike,
    *,
    epochs: int = 20,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 0,
    resume: bool = False,
    progress: bool = True,
) -> TrainState:
    """Trains on uint8 images (N, 28, 28, 1), writing checkpoints and metrics to run_dir.

    The network is re-initialised from ``seed``. With ``resume=True`` it continues from
    ``checkpoints/latest`` up to ``epochs``. Returns the final train state.
    """
    run = RunDir(run_dir, CHECKPOINT_SUFFIX)
    run.check_can_start(resume)
    state = create_train_state(ddpm, learning_rate, seed)
    generator = noise_generator(seed, ddpm.device)
    start_epoch, best_loss = 0, math.inf
    if resume:
        state, info = restore_train_state(run.checkpoint("latest"), state, generator)
        start_epoch, best_loss = int(info["epoch"]), float(info["best_loss"])

    def train_batch(x):
        x0 = torch.from_numpy(x).permute(0, 3, 1, 2).to(ddpm.device)  # NHWC -> NCHW
        return train_step(state, x0, generator)

    def save(name, info):
        save_checkpoint(run.checkpoint(name), state, info, generator)

    fit(images, train_batch=train_batch, save_checkpoint=save, run=run, epochs=epochs,
        batch_size=batch_size, seed=seed, start_epoch=start_epoch, best_loss=best_loss,
        progress=progress)
    return state
