"""A float64 numpy oracle for what both frameworks must compute.

When JAX and PyTorch disagree, comparing each with this says which side is wrong.
Everything here is written from the formulas in DESIGN.md, section 2.
"""

import numpy as np


def schedule(n_steps=1000, min_beta=1e-4, max_beta=0.02):
    betas = np.linspace(min_beta, max_beta, n_steps, dtype=np.float64)
    alphas = 1.0 - betas
    return betas, alphas, np.cumprod(alphas)


def embedding(n, d, exponent=4):
    """E[t, 2k] = sin(t w_k), E[t, 2k+1] = cos(t w_k), w_k = 10000^(-exponent k / d).

    exponent=4 is the tutorial's formula; exponent=2 the textbook one.
    """
    t = np.arange(n, dtype=np.float64)[:, None]
    w = 10_000.0 ** (-exponent * np.arange(d // 2, dtype=np.float64) / d)
    table = np.empty((n, d))
    table[:, 0::2], table[:, 1::2] = np.sin(t * w), np.cos(t * w)
    return table


def forward(x0, t, eta, n_steps=1000):
    alpha_bars = schedule(n_steps)[2][t].reshape(-1, *([1] * (x0.ndim - 1)))
    return np.sqrt(alpha_bars) * x0 + np.sqrt(1 - alpha_bars) * eta


def reverse_step(x, t, eps, z, sigma="beta", n_steps=1000):
    betas, alphas, alpha_bars = schedule(n_steps)
    x = (x - (1 - alphas[t]) / np.sqrt(1 - alpha_bars[t]) * eps) / np.sqrt(alphas[t])
    if t == 0:
        return x
    if sigma == "beta":
        variance = betas[t]
    else:
        variance = (1 - alpha_bars[t - 1]) / (1 - alpha_bars[t]) * betas[t]
    return x + np.sqrt(variance) * z


def gif_frames_kept(n_steps, n_frames):
    """The tutorial's loop, literally: keep iteration idx when in the uint linspace or t == 0."""
    frame_idxs = np.linspace(0, n_steps, n_frames).astype(np.uint)
    return [idx for idx, t in enumerate(range(n_steps)[::-1]) if idx in frame_idxs or t == 0]
