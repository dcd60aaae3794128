"""Argument checks both frameworks share: one wording for one mistake."""

from __future__ import annotations

SIGMAS = ("beta", "posterior")


def check_schedule(n_steps: int, min_beta: float, max_beta: float) -> None:
    if n_steps < 1:
        raise ValueError(f"n_steps must be at least 1, got {n_steps}")
    if not 0 < min_beta <= max_beta < 1:
        raise ValueError(f"need 0 < min_beta <= max_beta < 1, got min_beta={min_beta}, "
                         f"max_beta={max_beta}")


def check_sigma(sigma: str) -> None:
    if sigma not in SIGMAS:
        raise ValueError(f"sigma must be one of {SIGMAS}, got {sigma!r}")


def check_sampling(n_samples: int, n_frames: int, sigma: str) -> None:
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    check_sigma(sigma)
