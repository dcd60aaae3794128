"""The tutorial's UNet for 28x28 images, in PyTorch (NCHW).

Module names are the tutorial's own (``time_embed``, ``te1``, ``b1``, ``down1`` ...), so
its state_dict has the tutorial's 173 keys and a checkpoint saved by the tutorial's code
loads with ``load_state_dict(strict=True)``. Modules are also created in the tutorial's
order, so after ``torch.manual_seed(s)`` the initial weights equal the tutorial's.
"""

from __future__ import annotations

import torch
from torch import nn

IMAGE_CHW = (1, 28, 28)


def check_images(x, image_chw: tuple[int, ...] = IMAGE_CHW, what: str = "x", scaled: bool = False) -> None:
    """Raises ValueError unless ``x`` is a finite float32 tensor of shape (N, *image_chw).

    ``scaled=True``: the values must also lie in [-1, 1] (images, not noisy states).
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    shape = tuple(x.shape)
    if len(shape) != 1 + len(image_chw) or shape[1:] != tuple(image_chw) or shape[0] < 1:
        raise ValueError(f"{what} must have shape (N, {', '.join(map(str, image_chw))}) "
                         f"(NCHW), got {shape}")
    if x.dtype != torch.float32:
        raise ValueError(f"{what} must be float32 in [-1, 1], got dtype {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{what} contains NaN or infinite values")
    if scaled and (float(x.min()) < -1.0 - 1e-4 or float(x.max()) > 1.0 + 1e-4):
        raise ValueError(f"{what} must be images scaled to [-1, 1], got values from "
                         f"{float(x.min()):g} to {float(x.max()):g} (ddpm_io.scale_images "
                         "scales uint8 pixels)")


def check_timesteps(t, n_images: int, n_steps: int, device: torch.device | None = None) -> torch.Tensor:
    """Validates per-image timesteps given as (N,) or (N, 1); returns them as int64 (N,)."""
    t = torch.as_tensor(t, device=device)
    shape = tuple(t.shape)
    if shape not in ((n_images,), (n_images, 1)):
        raise ValueError(f"t must have shape ({n_images},) or ({n_images}, 1), got {shape}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"t must hold integer timesteps, got dtype {t.dtype}")
    t_min, t_max = int(t.min()), int(t.max())
    if t_min < 0 or t_max >= n_steps:
        raise ValueError(f"timesteps must be in 0..{n_steps - 1}, got values from {t_min} to {t_max}")
    return t.reshape(-1).long()


def sinusoidal_embedding(n: int, d: int) -> torch.Tensor:
    """The tutorial's time table, shape (n, d), float32.

    ``E[t, 2k] = sin(t * w_k)``, ``E[t, 2k+1] = cos(t * w_k)``, ``w_k = 10000 ** (-4k / d)``
    (the tutorial's exponent is 4k/d, not the textbook 2k/d). Built in float64 and cast
    once, so both frameworks get the same float32 table bit for bit.
    """
    if d % 2:
        raise ValueError(f"embedding dimension must be even, got {d}")
    t = torch.arange(n, dtype=torch.float64)[:, None]
    w = 10_000.0 ** (-4.0 * torch.arange(d // 2, dtype=torch.float64) / d)
    table = torch.empty(n, d, dtype=torch.float64)
    table[:, 0::2] = torch.sin(t * w)
    table[:, 1::2] = torch.cos(t * w)
    return table.float()


class Block(nn.Module):
    """The tutorial's MyBlock: LayerNorm over (C, H, W) -> Conv3x3 -> SiLU -> Conv3x3 -> SiLU.

    ``normalize=False`` skips the LayerNorm but, as in the tutorial, still creates its
    parameters (so the state_dict keeps their keys; they never get a gradient).
    """

    def __init__(self, shape: tuple[int, int, int], c_in: int, c_out: int, normalize: bool = True):
        super().__init__()
        self.ln = nn.LayerNorm(shape)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.activation = nn.SiLU()
        self.normalize = normalize

    def forward(self, x):  # (N, C_in, H, W) -> (N, C_out, H, W)
        out = self.ln(x) if self.normalize else x
        out = self.activation(self.conv1(out))
        return self.activation(self.conv2(out))


class TimeMLP(nn.Sequential):
    """The tutorial's ``_make_te``: Linear(d -> c), SiLU, Linear(c -> c) (keys ``0.*``, ``2.*``)."""

    def __init__(self, dim_in: int, features: int):
        super().__init__(nn.Linear(dim_in, features), nn.SiLU(), nn.Linear(features, features))

    def forward(self, t_emb):  # (N, d) -> (N, features, 1, 1), ready to add to every pixel
        return super().forward(t_emb)[:, :, None, None]


class Stage(nn.Sequential):
    """Consecutive Blocks at one resolution, keys ``0``, ``1``, ``2`` like the tutorial's nn.Sequential."""

    def __init__(self, size: int, c_in: int, features: tuple[int, ...], normalize_last: bool = True):
        blocks = []
        for i, c_out in enumerate(features):
            last = i == len(features) - 1
            blocks.append(Block((c_in, size, size), c_in, c_out, normalize=normalize_last or not last))
            c_in = c_out
        super().__init__(*blocks)


class Down3(nn.Sequential):
    """Conv k2 s1 p0 (7 -> 6), SiLU, Conv k4 s2 p1 (6 -> 3); 40 channels throughout."""

    def __init__(self):
        super().__init__(nn.Conv2d(40, 40, 2, 1), nn.SiLU(), nn.Conv2d(40, 40, 4, 2, 1))


class Up1(nn.Sequential):
    """ConvTranspose k4 s2 p1 (3 -> 6), SiLU, ConvTranspose k2 s1 p0 (6 -> 7)."""

    def __init__(self):
        super().__init__(nn.ConvTranspose2d(40, 40, 4, 2, 1), nn.SiLU(), nn.ConvTranspose2d(40, 40, 2, 1))


class UNet(nn.Module):
    """eps_theta(x, t): x (N, 1, 28, 28) float32, t (N,) or (N, 1) int -> (N, 1, 28, 28).

    Shapes: 28 -> 14 -> 7 -> 6 -> 3 -> 6 -> 7 -> 14 -> 28 (DESIGN.md, section 2).
    The time table ``time_embed.weight`` is frozen (``requires_grad=False``).
    """

    def __init__(self, n_steps: int = 1000, time_emb_dim: int = 100):
        super().__init__()
        self.n_steps = n_steps
        self.time_emb_dim = time_emb_dim

        # Created random and then overwritten, as the tutorial does, so that the global
        # RNG advances exactly as in the tutorial and later modules get its initial weights.
        self.time_embed = nn.Embedding(n_steps, time_emb_dim)
        self._load_time_table()
        self.time_embed.requires_grad_(False)

        self.te1 = TimeMLP(time_emb_dim, 1)
        self.b1 = Stage(28, 1, (10, 10, 10))
        self.down1 = nn.Conv2d(10, 10, 4, 2, 1)
        self.te2 = TimeMLP(time_emb_dim, 10)
        self.b2 = Stage(14, 10, (20, 20, 20))
        self.down2 = nn.Conv2d(20, 20, 4, 2, 1)
        self.te3 = TimeMLP(time_emb_dim, 20)
        self.b3 = Stage(7, 20, (40, 40, 40))
        self.down3 = Down3()

        self.te_mid = TimeMLP(time_emb_dim, 40)
        self.b_mid = Stage(3, 40, (20, 20, 40))

        self.up1 = Up1()
        self.te4 = TimeMLP(time_emb_dim, 80)
        self.b4 = Stage(7, 80, (40, 20, 20))
        self.up2 = nn.ConvTranspose2d(20, 20, 4, 2, 1)
        self.te5 = TimeMLP(time_emb_dim, 40)
        self.b5 = Stage(14, 40, (20, 10, 10))
        self.up3 = nn.ConvTranspose2d(10, 10, 4, 2, 1)
        self.te_out = TimeMLP(time_emb_dim, 20)
        self.b_out = Stage(28, 20, (10, 10, 10), normalize_last=False)
        self.conv_out = nn.Conv2d(10, 1, 3, 1, 1)

    def _load_time_table(self) -> None:
        with torch.no_grad():
            self.time_embed.weight.copy_(sinusoidal_embedding(self.n_steps, self.time_emb_dim))

    def reset_parameters(self) -> None:
        """Fresh weights, drawing from the global RNG in the same order as construction.

        So ``torch.manual_seed(s); net.reset_parameters()`` gives the weights of
        ``torch.manual_seed(s); UNet()``, which are the tutorial's. The time table is restored.
        """
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        self._load_time_table()

    def forward(self, x, t):
        check_images(x)
        t_emb = self.time_embed(check_timesteps(t, x.shape[0], self.n_steps, x.device))

        out1 = self.b1(x + self.te1(t_emb))  # 10x28x28
        out2 = self.b2(self.down1(out1) + self.te2(t_emb))  # 20x14x14
        out3 = self.b3(self.down2(out2) + self.te3(t_emb))  # 40x7x7

        mid = self.b_mid(self.down3(out3) + self.te_mid(t_emb))  # 40x3x3

        h = torch.cat((out3, self.up1(mid)), dim=1)  # 80x7x7
        out4 = self.b4(h + self.te4(t_emb))  # 20x7x7

        h = torch.cat((out2, self.up2(out4)), dim=1)  # 40x14x14
        out5 = self.b5(h + self.te5(t_emb))  # 10x14x14

        h = torch.cat((out1, self.up3(out5)), dim=1)  # 20x28x28
        out = self.b_out(h + self.te_out(t_emb))  # 10x28x28
        return self.conv_out(out)  # 1x28x28
