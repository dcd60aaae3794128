"""The DDPM noise schedule (Ho et al. 2020), float32, 0-based timesteps."""

from __future__ import annotations

from typing import NamedTuple

import torch

from ddpm_io.checks import check_schedule


class Schedule(NamedTuple):
    """betas, alphas = 1 - betas, alpha_bars = cumulative product of alphas; each (T,)."""

    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bars: torch.Tensor


def make_schedule(n_steps: int = 1000, min_beta: float = 1e-4, max_beta: float = 0.02,
                  device: torch.device | str | None = None) -> Schedule:
    """The tutorial's linear schedule: ``betas = linspace(min_beta, max_beta, T)``.

    alpha_bars are the tutorial's prefix products, one ``torch.prod`` per step, rather
    than ``cumprod``: the two routes round differently in float32.
    """
    check_schedule(n_steps, min_beta, max_beta)
    betas = torch.linspace(min_beta, max_beta, n_steps, dtype=torch.float32)
    alphas = 1 - betas
    alpha_bars = torch.tensor([torch.prod(alphas[: i + 1]) for i in range(len(alphas))])
    return Schedule(betas.to(device), alphas.to(device), alpha_bars.to(device))
