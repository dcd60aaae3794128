"""The DDPM noise schedule (Ho et al. 2020), float32, 0-based timesteps."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from ddpm_io.checks import check_schedule


class Schedule(NamedTuple):
    """betas, alphas = 1 - betas, alpha_bars = cumulative product of alphas; each (T,)."""

    betas: jnp.ndarray
    alphas: jnp.ndarray
    alpha_bars: jnp.ndarray


def make_schedule(n_steps: int = 1000, min_beta: float = 1e-4, max_beta: float = 0.02) -> Schedule:
    """The tutorial's linear schedule: ``betas = linspace(min_beta, max_beta, T)``."""
    check_schedule(n_steps, min_beta, max_beta)
    betas = jnp.linspace(min_beta, max_beta, n_steps, dtype=jnp.float32)
    alphas = 1.0 - betas
    return Schedule(betas, alphas, jnp.cumprod(alphas))
