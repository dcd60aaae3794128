"""DDPM around a noise-predicting network: forward noising, loss, reverse step, sampler.

The tutorial's MyDDPM: an nn.Module holding the network; the schedule is kept as plain
tensor attributes (not buffers), so the state_dict holds only ``network.*``, as the
tutorial's does. Images are NCHW float32 in [-1, 1].
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ddpm_io.checks import check_sampling, check_sigma
from ddpm_io.images import gif_frame_steps
from ddpm_io.runs import ModelConfig
from ddpm_torch.schedule import Schedule, make_schedule
from ddpm_torch.unet import UNet, check_images, check_timesteps

def _check_step(t, n_steps: int) -> None:
    shape = tuple(torch.as_tensor(t).shape)
    if shape:
        raise ValueError(f"the reverse step takes one scalar t for the whole batch, got shape {shape}")
    if torch.as_tensor(t).is_floating_point():
        raise ValueError(f"t must be an integer timestep, got {t!r}")
    if not 0 <= int(t) < n_steps:
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
    x = (x - (1 - alpha_t) / torch.sqrt(1 - alpha_bar_t) * eps) / torch.sqrt(alpha_t)
    if t == 0:
        return x
    if sigma == "beta":
        variance = beta_t
    else:
        variance = (1 - schedule.alpha_bars[t - 1]) / (1 - alpha_bar_t) * beta_t
    return x + torch.sqrt(variance) * z


class DDPM(nn.Module):
    """The diffusion model: ``network(x, t)`` predicts the noise added to x_0.

    The network and the schedule live on ``device`` (CPU when None), fixed at
    construction as in the tutorial: ``.to()`` moves the network but not the schedule.
    """

    def __init__(self, network: nn.Module | None = None, n_steps: int = 1000, min_beta: float = 1e-4,
                 max_beta: float = 0.02, device: torch.device | str | None = None,
                 image_chw: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        network = network if network is not None else UNet(n_steps=n_steps)
        if getattr(network, "n_steps", n_steps) != n_steps:
            raise ValueError(f"network has a time table for {network.n_steps} steps, "
                             f"the DDPM has {n_steps}")
        self.device = torch.device(device if device is not None else "cpu")
        self.network = network.to(self.device)
        self.n_steps = n_steps
        self.min_beta = min_beta
        self.max_beta = max_beta
        self.image_chw = tuple(image_chw)
        self.config  # validates the schedule and the image shape
        self.schedule = make_schedule(n_steps, min_beta, max_beta, self.device)

    @classmethod
    def from_config(cls, config: ModelConfig, device: torch.device | str | None = None) -> "DDPM":
        h, w, c = config.image_shape
        return cls(UNet(config.n_steps, config.time_emb_dim), config.n_steps, config.min_beta,
                   config.max_beta, device, (c, h, w))

    @property
    def config(self) -> ModelConfig:
        c, h, w = self.image_chw
        return ModelConfig(self.n_steps, self.min_beta, self.max_beta,
                           getattr(self.network, "time_emb_dim", 100), (h, w, c))

    def forward(self, x0, t, eta=None):
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eta, one t per image.

        ``eta`` ~ N(0, I) is drawn from the global RNG when not given.
        """
        check_images(x0, self.image_chw, "x0", scaled=True)
        if eta is None:
            eta = torch.randn_like(x0)
        check_images(eta, self.image_chw, "eta")
        if eta.shape != x0.shape:
            raise ValueError(f"eta must have the shape of x0 {tuple(x0.shape)}, got {tuple(eta.shape)}")
        t = check_timesteps(t, x0.shape[0], self.n_steps, self.device)
        alpha_bar = self.schedule.alpha_bars[t][:, None, None, None]
        return torch.sqrt(alpha_bar) * x0 + torch.sqrt(1 - alpha_bar) * eta

    def backward(self, x, t):
        """The network's estimate of the noise in x_t."""
        check_images(x, self.image_chw)
        return self.network(x, check_timesteps(t, x.shape[0], self.n_steps, self.device))

    def loss(self, x0, t, eta):
        """Mean squared error between the predicted and the true noise (no 1/2 factor)."""
        return F.mse_loss(self.backward(self.forward(x0, t, eta), t), eta)

    def step(self, x, t, z, sigma: str = "beta"):
        """One reverse step with the network's noise estimate; ``t`` a scalar int.

        ``z`` (the shape of x) is unused at t = 0, where it may be None.
        """
        _check_step(t, self.n_steps)
        check_sigma(sigma)
        check_images(x, self.image_chw)
        if z is None and int(t) != 0:
            raise ValueError("z may be None only at t = 0")
        if z is not None and z.shape != x.shape:
            raise ValueError(f"z must have the shape of x {tuple(x.shape)}, got {tuple(z.shape)}")
        eps = self.backward(x, torch.full((x.shape[0],), int(t), dtype=torch.long, device=self.device))
        return reverse_step(self.schedule, x, t, eps, z, sigma)

    @torch.no_grad()
    def sample(self, n_samples: int = 16, n_frames: int = 100, sigma: str = "beta",
               generator: torch.Generator | None = None,
               progress: Callable[[int], None] | None = None, noise: torch.Tensor | None = None):
        """Runs the tutorial's reverse loop for t = T-1 .. 0 from x_T ~ N(0, I).

        Returns ``(x0, frames)``: x0 (n_samples, C, H, W) and frames
        (n_kept, n_samples, C, H, W), only the GIF frames chosen by
        ``ddpm_io.gif_frame_steps`` (the last one is x0). Noise comes from ``generator``
        (on this model's device), or from ``noise`` (T + 1, n_samples, C, H, W) when
        given: ``noise[0]`` is x_T and ``noise[1 + idx]`` is z at loop iteration idx
        (the last one, at t = 0, is unused).
        ``progress``, if given, is called with the number of steps done after each step.
        """
        check_sampling(n_samples, n_frames, sigma)
        shape = (n_samples, *self.image_chw)
        if noise is not None and tuple(noise.shape) != (self.n_steps + 1, *shape):
            raise ValueError(f"noise must have shape {(self.n_steps + 1, *shape)}, "
                             f"got {tuple(noise.shape)}")

        def draw(i):
            if noise is not None:
                return noise[i].to(self.device)
            return torch.randn(shape, generator=generator, device=self.device)

        kept = set(gif_frame_steps(self.n_steps, n_frames).tolist())
        frames = []
        x = draw(0)
        for idx, t in enumerate(range(self.n_steps - 1, -1, -1)):
            x = self.step(x, t, draw(1 + idx) if t > 0 else None, sigma)
            if idx in kept:
                frames.append(x)
            if progress is not None:
                progress(idx + 1)
        return x, torch.stack(frames)
