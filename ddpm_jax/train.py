"""Training: the train state, the jitted update step, checkpoints, and the epoch loop.

The update step is a pure function ``(state, x0, key) -> (state, loss)``, jitted once
with the state donated; its randomness comes from ``fold_in(key, state.step)``.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

import flax.serialization
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddpm_io.runs import RunDir, atomic_write_bytes
from ddpm_io.training import fit
from ddpm_jax.ddpm import DDPM, check_images

CHECKPOINT_SUFFIX = ".msgpack"
FROZEN = ("time_embed",)  # top-level parameter groups the optimizer never moves


class TrainState(flax.struct.PyTreeNode):
    step: jnp.ndarray
    params: Any
    opt_state: Any
    ddpm: DDPM = flax.struct.field(pytree_node=False)
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)


@functools.lru_cache(maxsize=None)
def make_optimizer(learning_rate: float = 1e-3) -> optax.GradientTransformation:
    """Adam (torch defaults) on the trained weights; the time table gets zero updates.

    Cached: the optimizer is a static part of the train state, so one object per learning
    rate lets every train state share one compiled train step.
    """
    def labels(params):
        return {k: jax.tree_util.tree_map(lambda _: "frozen" if k in FROZEN else "trained", v)
                for k, v in params.items()}

    return optax.multi_transform({"trained": optax.adam(learning_rate),
                                  "frozen": optax.set_to_zero()}, labels)


def create_train_state(key, ddpm: DDPM, learning_rate: float = 1e-3) -> TrainState:
    if not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"learning rate must be positive, got {learning_rate}")
    params = ddpm.init(key)
    tx = make_optimizer(learning_rate)
    return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), ddpm, tx)


def _train_step(state: TrainState, x0, key):
    ddpm = state.ddpm
    step_key = jax.random.fold_in(key, state.step)
    t_key, eta_key = jax.random.split(step_key)
    t = jax.random.randint(t_key, (x0.shape[0],), 0, ddpm.n_steps)
    eta = jax.random.normal(eta_key, x0.shape, x0.dtype)
    loss, grads = jax.value_and_grad(ddpm.loss)(state.params, x0, t, eta)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), loss


# The step itself, jitted once with the state donated; ``train_step`` adds the input
# checks that cannot run inside a jit. Use this one to AOT-compile (``.lower``).
jitted_train_step = jax.jit(_train_step, donate_argnums=0)


def train_step(state: TrainState, x0, key) -> tuple[TrainState, jnp.ndarray]:
    """One Adam step on a batch x0 (N, 28, 28, 1) in [-1, 1]: (state, x0, key) -> (state, loss).

    t ~ Uniform{0..T-1} and eta ~ N(0, I) are drawn from fold_in(key, state.step), so the
    same key gives a new draw at every step. ``state`` is donated: do not reuse it.
    The batch is checked (shape, dtype, range) before the jitted step runs.
    """
    check_images(x0, state.ddpm.image_shape, "x0", scaled=True)
    return jitted_train_step(state, x0, key)


def save_checkpoint(path: str | os.PathLike, state: TrainState, info: dict) -> Path:
    """Writes params, optimizer state, step and ``info`` as one msgpack file, atomically."""
    record = {"state": flax.serialization.to_state_dict(
        {"step": state.step, "params": state.params, "opt_state": state.opt_state}),
        "info": info}
    return atomic_write_bytes(path, flax.serialization.msgpack_serialize(jax.device_get(record)))


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The raw checkpoint record: {"state": {"step", "params", "opt_state"}, "info": {...}}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return flax.serialization.msgpack_restore(path.read_bytes())
    except Exception as e:  # noqa: BLE001 - msgpack raises several types for bad bytes
        raise ValueError(f"{path} is not a readable checkpoint ({e})") from e


def load_params(path: str | os.PathLike) -> dict:
    """The network parameters stored in a checkpoint, for sampling."""
    return jax.tree_util.tree_map(jnp.asarray, read_checkpoint(path)["state"]["params"])


def restore_train_state(path: str | os.PathLike, like: TrainState) -> tuple[TrainState, dict]:
    """Restores a checkpoint into the structure of ``like``; returns (state, info)."""
    record = read_checkpoint(path)
    target = {"step": like.step, "params": like.params, "opt_state": like.opt_state}
    restored = flax.serialization.from_state_dict(target, record["state"])
    restored = jax.tree_util.tree_map(jnp.asarray, restored)
    return like.replace(**restored), record["info"]


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

    With ``resume=True`` it continues from ``checkpoints/latest`` up to ``epochs``.
    Returns the final train state.
    """
    run = RunDir(run_dir, CHECKPOINT_SUFFIX)
    run.check_can_start(resume)
    base_key = jax.random.key(seed)
    init_key, step_key = jax.random.split(base_key)
    state = create_train_state(init_key, ddpm, learning_rate)
    start_epoch, best_loss = 0, math.inf
    if resume:
        state, info = restore_train_state(run.checkpoint("latest"), state)
        start_epoch, best_loss = int(info["epoch"]), float(info["best_loss"])

    def train_batch(x):
        nonlocal state
        state, loss = train_step(state, jnp.asarray(x), step_key)
        return loss

    def save(name, info):
        save_checkpoint(run.checkpoint(name), state, info)

    fit(images, train_batch=train_batch, save_checkpoint=save, run=run, epochs=epochs,
        batch_size=batch_size, seed=seed, start_epoch=start_epoch, best_loss=best_loss,
        progress=progress)
    return state
