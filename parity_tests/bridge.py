"""Moving arrays and weights between the two frameworks, for the parity tests."""

import numpy as np
import torch

import ddpm_torch
from ddpm_jax.convert import params_to_torch

T = 1000  # the tutorial's model, full size: the time table is part of what is compared


def nchw(x):
    """NHWC numpy/JAX -> NCHW torch (float32, contiguous)."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 3, 1, 2)))


def nhwc(x):
    """NCHW torch -> NHWC numpy."""
    return x.detach().cpu().numpy().transpose(0, 2, 3, 1)


def torch_model_from(params, n_steps=T):
    """A ddpm_torch DDPM holding the given JAX parameters (strict load)."""
    model = ddpm_torch.DDPM(n_steps=n_steps)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in params_to_torch(params).items()},
                          strict=True)
    return model


def max_rel(a, b):
    """max |a - b| / max |b|: a scale-aware difference for whole tensors."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def adam_batches(n_steps, n_images=8, seed=0):
    """Fixed (x0, t, eta) arrays for optimizer steps: injected, since random streams differ."""
    rng = np.random.default_rng(seed)
    for _ in range(n_steps):
        x0 = np.clip(rng.normal(0, 0.6, (n_images, 28, 28, 1)), -1, 1).astype(np.float32)
        t = rng.integers(0, 1000, n_images)
        eta = rng.normal(size=(n_images, 28, 28, 1)).astype(np.float32)
        yield x0, t, eta
