"""DDPM around a noise-predicting network: forward noising, loss, reverse step, sampler.

Functional: the DDPM object holds only the schedule and the network definition;
parameters are a pytree passed to each call. Images are NHWC float32 in [-1, 1].
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ddpm_io.checks import check_sampling, check_sigma
from ddpm_io.images import gif_frame_steps
from ddpm_io.runs import ModelConfig
from ddpm_jax.schedule import Schedule, make_schedule
from ddpm_jax.unet import UNet, init_params

def _is_concrete(a) -> bool:
    return not isinstance(a, jax.core.Tracer)


def check_images(x, image_shape: tuple[int, ...], what: str = "x", scaled: bool = False) -> None:
    """Raises ValueError unless ``x`` is a finite float batch of shape (N, *image_shape).

    ``scaled=True``: the values must also lie in [-1, 1] (images, not noisy states).
    Values are checked only for concrete arrays; inside a jit they are unknown.
    """
    if not isinstance(x, (np.ndarray, jax.Array)):
        raise ValueError(f"{what} must be a numpy or JAX array, got {type(x).__name__}")
    shape = tuple(np.shape(x))
    if len(shape) != 1 + len(image_shape) or shape[1:] != tuple(image_shape) or shape[0] < 1:
        raise ValueError(f"{what} must have shape (N, {', '.join(map(str, image_shape))}) "
                         f"(NHWC), got {shape}")
    if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        raise ValueError(f"{what} must be floating point in [-1, 1], got dtype {jnp.result_type(x)}")
    if _is_concrete(x):
        values = np.asarray(x)
        if not np.isfinite(values).all():
            raise ValueError(f"{what} contains NaN or infinite values")
        if scaled and (values.min() < -1.0 - 1e-4 or values.max() > 1.0 + 1e-4):
            raise ValueError(f"{what} must be images scaled to [-1, 1], got values from "
                             f"{values.min():g} to {values.max():g} (ddpm_io.scale_images "
                             "scales uint8 pixels)")


def check_timesteps(t, n_images: int, n_steps: int) -> jnp.ndarray:
    """Validates per-image timesteps given as (N,) or (N, 1); returns them as int32 (N,).

    A concrete t outside 0..T-1 raises here. Inside a caller's own jit the values are
    unknown: the embedding lookup then yields NaN for them rather than clamping.
    """
    if isinstance(t, (list, tuple)):
        t = np.asarray(t)
    if not isinstance(t, (np.ndarray, jax.Array)):
        raise ValueError(f"t must be a numpy or JAX array of integers, got {type(t).__name__}")
    shape = tuple(np.shape(t))
    if shape not in ((n_images,), (n_images, 1)):
        raise ValueError(f"t must have shape ({n_images},) or ({n_images}, 1), got {shape}")
    if not jnp.issubdtype(jnp.result_type(t), jnp.integer):
        raise ValueError(f"t must hold integer timesteps, got dtype {jnp.result_type(t)}")
    if _is_concrete(t):
        t_np = np.asarray(t)
        if t_np.min() < 0 or t_np.max() >= n_steps:
            raise ValueError(f"timesteps must be in 0..{n_steps - 1}, got values from "
                             f"{t_np.min()} to {t_np.max()}")
    return jnp.reshape(t, (-1,)).astype(jnp.int32)


def _check_step(t, n_steps: int) -> None:
    if np.ndim(t) != 0:
        raise ValueError(f"the reverse step takes one scalar t for the whole batch, got shape {np.shape(t)}")
    if not jnp.issubdtype(jnp.result_type(t), jnp.integer):
        raise ValueError(f"t must be an integer timestep, got {t!r}")
    if _is_concrete(t) and not 0 <= int(t) < n_steps:
        raise ValueError(f"t must be in 0..{n_steps - 1}, got {int(t)}")


def reverse_step(schedule: Schedule, x, t, eps, z, sigma: str = "beta"):
    """One step of the reverse process from x_t to x_{t-1}, given the noise estimate ``eps``.

    ``x = (x - (1 - alpha_t) / sqrt(1 - alpha_bar_t) * eps) / sqrt(alpha_t)``, then for
    t > 0 ``x += sigma_t * z``; ``z`` is ignored at t = 0. ``sigma="beta"``: sigma_t^2 =
    beta_t; ``"posterior"``: beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t).
    ``t`` is a scalar (the same step for the whole batch).
    """
    check_sigma(sigma)
    alpha_t, alpha_bar_t, beta_t = schedule.alphas[t], schedule.alpha_bars[t], schedule.betas[t]
    x = (x - (1.0 - alpha_t) / jnp.sqrt(1.0 - alpha_bar_t) * eps) / jnp.sqrt(alpha_t)
    if sigma == "beta":
        variance = beta_t
    else:
        prev_alpha_bar = jnp.where(t > 0, schedule.alpha_bars[jnp.maximum(t - 1, 0)], 1.0)
        variance = (1.0 - prev_alpha_bar) / (1.0 - alpha_bar_t) * beta_t
    return x + jnp.where(t > 0, jnp.sqrt(variance) * z, 0.0)


class DDPM:
    """The diffusion model: ``network(x, t)`` predicts the noise added to x_0.

    ``network`` is a Flax module called as ``network.apply({"params": p}, x, t)``.
    """

    def __init__(self, network=None, n_steps: int = 1000, min_beta: float = 1e-4,
                 max_beta: float = 0.02, image_shape: tuple[int, int, int] = (28, 28, 1)):
        self.network = network if network is not None else UNet(n_steps=n_steps)
        if getattr(self.network, "n_steps", n_steps) != n_steps:
            raise ValueError(f"network has a time table for {self.network.n_steps} steps, "
                             f"the DDPM has {n_steps}")
        self.n_steps = n_steps
        self.min_beta = min_beta
        self.max_beta = max_beta
        self.image_shape = tuple(image_shape)
        self.config  # validates the schedule and the image shape
        self.schedule = make_schedule(n_steps, min_beta, max_beta)

    def _key(self):
        return (self.network, self.n_steps, self.min_beta, self.max_beta, self.image_shape)

    # Equal by value, so that jitted functions taking a DDPM as a static argument
    # (the train step, the sampler) compile once per model, not once per object.
    def __eq__(self, other):
        return type(other) is type(self) and other._key() == self._key()

    def __hash__(self):
        return hash(self._key())

    @classmethod
    def from_config(cls, config: ModelConfig) -> "DDPM":
        return cls(UNet(config.n_steps, config.time_emb_dim), config.n_steps, config.min_beta,
                   config.max_beta, config.image_shape)

    @property
    def config(self) -> ModelConfig:
        return ModelConfig(self.n_steps, self.min_beta, self.max_beta,
                           getattr(self.network, "time_emb_dim", 100), self.image_shape)

    def init(self, key) -> dict:
        """Fresh network parameters (a pytree), including the frozen time table.

        Initialised as PyTorch initialises the tutorial's modules (see ``init_params``).
        """
        return init_params(self.network, key)

    def forward(self, x0, t, eta):
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eta, one t per image."""
        check_images(x0, self.image_shape, "x0", scaled=True)
        check_images(eta, self.image_shape, "eta")
        if eta.shape != x0.shape:
            raise ValueError(f"eta must have the shape of x0 {x0.shape}, got {eta.shape}")
        t = check_timesteps(t, x0.shape[0], self.n_steps)
        alpha_bar = self.schedule.alpha_bars[t][:, None, None, None]
        return jnp.sqrt(alpha_bar) * x0 + jnp.sqrt(1.0 - alpha_bar) * eta

    def backward(self, params, x, t):
        """The network's estimate of the noise in x_t."""
        check_images(x, self.image_shape)
        t = check_timesteps(t, x.shape[0], self.n_steps)
        return _apply_network(self, params, x, t)

    def loss(self, params, x0, t, eta):
        """Mean squared error between the predicted and the true noise (no 1/2 factor)."""
        eps = self.backward(params, self.forward(x0, t, eta), t)
        return jnp.mean(jnp.square(eps - eta))

    def step(self, params, x, t, z, sigma: str = "beta"):
        """One reverse step with the network's noise estimate; ``t`` a scalar int.

        ``z`` (the shape of x) is unused at t = 0, where it may be None.
        """
        _check_step(t, self.n_steps)
        check_sigma(sigma)
        check_images(x, self.image_shape)
        if z is None:
            if not (_is_concrete(t) and int(t) == 0):
                raise ValueError("z may be None only at t = 0")
            z = jnp.zeros_like(x)
        elif np.shape(z) != np.shape(x):
            raise ValueError(f"z must have the shape of x {np.shape(x)}, got {np.shape(z)}")
        eps = self.backward(params, x, jnp.full((x.shape[0],), t, jnp.int32))
        return reverse_step(self.schedule, x, t, eps, z, sigma)

    def sample(self, params, key, n_samples: int = 16, n_frames: int = 100, sigma: str = "beta",
               progress: Callable[[int], None] | None = None):
        """Runs the whole reverse process from x_T ~ N(0, I) as one ``lax.scan`` in one jit.

        Returns ``(x0, frames)``: x0 (n_samples, H, W, C) and frames
        (n_kept, n_samples, H, W, C), only the GIF frames chosen by
        ``ddpm_io.gif_frame_steps`` (the last one is x0), never all T states.
        ``progress``, if given, is called on the host with the number of steps done
        (about 100 times per run); pass the same object across calls, since a new one
        means a new compilation.
        """
        check_sampling(n_samples, n_frames, sigma)
        return _sample(self, params, key, n_samples=n_samples, n_frames=n_frames, sigma=sigma,
                       progress=progress)


@functools.partial(jax.jit, static_argnames="ddpm")
def _apply_network(ddpm: DDPM, params, x, t):
    # Jitted even when called eagerly: op-by-op, one UNet call costs seconds of dispatch.
    return ddpm.network.apply({"params": params}, x, t)


@functools.partial(jax.jit, static_argnames=("ddpm", "n_samples", "n_frames", "sigma", "progress"))
def _sample(ddpm: DDPM, params, key, n_samples, n_frames, sigma, progress):
    """DDPM.sample's body. Keys: x_T from split(key)[0], z at iteration idx from
    fold_in(split(key)[1], idx). The GIF frames live in a preallocated carry buffer."""
    n_steps = ddpm.n_steps
    kept = gif_frame_steps(n_steps, n_frames)
    slot_of_step = np.full(n_steps, -1, np.int32)  # which frame each loop iteration fills
    slot_of_step[kept] = np.arange(len(kept))
    slot_of_step = jnp.asarray(slot_of_step)
    report_every = max(1, n_steps // 100)

    init_key, noise_key = jax.random.split(key)
    x = jax.random.normal(init_key, (n_samples, *ddpm.image_shape), jnp.float32)
    frames = jnp.zeros((len(kept), *x.shape), jnp.float32)

    def body(carry, idx):
        x, frames = carry
        t = n_steps - 1 - idx
        z = jax.random.normal(jax.random.fold_in(noise_key, idx), x.shape, jnp.float32)
        eps = _apply_network(ddpm, params, x, jnp.full((n_samples,), t, jnp.int32))
        x = reverse_step(ddpm.schedule, x, t, eps, z, sigma)
        slot = slot_of_step[idx]
        frames = jax.lax.cond(
            slot >= 0, lambda f: jax.lax.dynamic_update_index_in_dim(f, x, slot, 0),
            lambda f: f, frames)
        if progress is not None:
            done = idx + 1
            jax.lax.cond((done % report_every == 0) | (done == n_steps),
                         lambda: jax.debug.callback(progress, done), lambda: None)
        return (x, frames), None

    (x, frames), _ = jax.lax.scan(body, (x, frames), jnp.arange(n_steps, dtype=jnp.int32))
    return x, frames
