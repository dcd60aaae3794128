"""The tutorial's UNet for 28x28 images, in Flax (NHWC).

Parameter paths mirror the tutorial's PyTorch module names (``b1/0/conv1``,
``te1/0``, ``down3/2`` ...) so that conversion to and from its state_dict is a
rename plus a layout change per leaf (see ``ddpm_jax.convert``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def sinusoidal_embedding(n: int, d: int) -> jnp.ndarray:
    """The tutorial's time table, shape (n, d), float32.

    ``E[t, 2k] = sin(t * w_k)``, ``E[t, 2k+1] = cos(t * w_k)``, ``w_k = 10000 ** (-4k / d)``
    (the tutorial's exponent is 4k/d, not the textbook 2k/d). Built in float64 and cast
    once, so both frameworks get the same float32 table bit for bit.
    """
    if d % 2:
        raise ValueError(f"embedding dimension must be even, got {d}")
    t = np.arange(n, dtype=np.float64)[:, None]
    w = 10_000.0 ** (-4.0 * np.arange(d // 2, dtype=np.float64) / d)
    table = np.empty((n, d), dtype=np.float64)
    table[:, 0::2] = np.sin(t * w)
    table[:, 1::2] = np.cos(t * w)
    return jnp.asarray(table.astype(np.float32))


def _conv(features: int, kernel: int, stride: int = 1, padding: int = 1, name: str | None = None):
    """A torch-style Conv2d: explicit symmetric padding (Flax defaults to 'SAME')."""
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                   padding=((padding, padding), (padding, padding)), name=name)


def _conv_transpose(features: int, kernel: int, stride: int, padding: int, name: str | None = None):
    """A torch-style ConvTranspose2d(kernel, stride, padding).

    torch computes the gradient of a conv: Flax needs the flipped kernel
    (``transpose_kernel=True``) and ``kernel - 1 - padding`` zeros on each side.
    """
    pad = kernel - 1 - padding
    return nn.ConvTranspose(features, (kernel, kernel), strides=(stride, stride),
                            padding=((pad, pad), (pad, pad)), transpose_kernel=True, name=name)


class Block(nn.Module):
    """LayerNorm over (H, W, C) -> Conv3x3 -> SiLU -> Conv3x3 -> SiLU.

    ``normalize=False`` skips the LayerNorm and creates no parameters for it (the
    tutorial creates them anyway; ``convert`` adds them back on export).
    """

    features: int
    normalize: bool = True

    @nn.compact
    def __call__(self, x):  # (N, H, W, C_in) -> (N, H, W, features)
        if self.normalize:
            # torch's LayerNorm((C, H, W)): statistics and affine over all three axes,
            # eps 1e-5, two-pass variance.
            x = nn.LayerNorm(epsilon=1e-5, reduction_axes=(-3, -2, -1), feature_axes=(-3, -2, -1),
                             use_fast_variance=False, name="ln")(x)
        x = nn.silu(_conv(self.features, 3, name="conv1")(x))
        return nn.silu(_conv(self.features, 3, name="conv2")(x))


class TimeMLP(nn.Module):
    """The tutorial's ``_make_te``: Linear(d -> c), SiLU, Linear(c -> c)."""

    features: int

    @nn.compact
    def __call__(self, t_emb):  # (N, d) -> (N, 1, 1, features), ready to add to every pixel
        h = nn.silu(nn.Dense(self.features, name="0")(t_emb))
        return nn.Dense(self.features, name="2")(h)[:, None, None, :]


class Stage(nn.Module):
    """Consecutive Blocks, named "0", "1", "2" like the tutorial's nn.Sequential."""

    features: tuple[int, ...]
    normalize_last: bool = True

    @nn.compact
    def __call__(self, x):
        for i, f in enumerate(self.features):
            last = i == len(self.features) - 1
            x = Block(f, normalize=self.normalize_last or not last, name=str(i))(x)
        return x


class Down3(nn.Module):
    """Conv k2 s1 p0 (7 -> 6), SiLU, Conv k4 s2 p1 (6 -> 3); 40 channels throughout."""

    @nn.compact
    def __call__(self, x):
        return _conv(40, 4, 2, 1, name="2")(nn.silu(_conv(40, 2, 1, 0, name="0")(x)))


class Up1(nn.Module):
    """ConvTranspose k4 s2 p1 (3 -> 6), SiLU, ConvTranspose k2 s1 p0 (6 -> 7)."""

    @nn.compact
    def __call__(self, x):
        return _conv_transpose(40, 2, 1, 0, name="2")(nn.silu(_conv_transpose(40, 4, 2, 1, name="0")(x)))


class TimeTable(nn.Module):
    """The frozen (n_steps, d) sinusoidal table, a leaf named like torch's nn.Embedding."""

    n_steps: int
    dim: int

    @nn.compact
    def __call__(self, t):  # (N,) int -> (N, dim)
        table = self.param("embedding", lambda _: sinusoidal_embedding(self.n_steps, self.dim))
        # mode="fill": an out-of-range t inside a user's jit gives NaN, never a clamped row.
        return jnp.take(jax.lax.stop_gradient(table), t, axis=0, mode="fill", fill_value=jnp.nan)


class UNet(nn.Module):
    """eps_theta(x, t): x (N, 28, 28, 1) float32, t (N,) or (N, 1) int -> (N, 28, 28, 1).

    Shapes: 28 -> 14 -> 7 -> 6 -> 3 -> 6 -> 7 -> 14 -> 28 (DESIGN.md, section 2).
    The time table ``time_embed/embedding`` is a parameter only so that it travels with
    the weights; gradients never reach it and the optimizer leaves it alone.
    """

    n_steps: int = 1000
    time_emb_dim: int = 100

    @nn.compact
    def __call__(self, x, t):
        t_emb = TimeTable(self.n_steps, self.time_emb_dim, name="time_embed")(jnp.reshape(t, (-1,)))

        def te(features, name):
            return TimeMLP(features, name=name)(t_emb)

        out1 = Stage((10, 10, 10), name="b1")(x + te(1, "te1"))  # 28x28x10
        out2 = Stage((20, 20, 20), name="b2")(
            _conv(10, 4, 2, 1, name="down1")(out1) + te(10, "te2"))  # 14x14x20
        out3 = Stage((40, 40, 40), name="b3")(
            _conv(20, 4, 2, 1, name="down2")(out2) + te(20, "te3"))  # 7x7x40

        mid = Stage((20, 20, 40), name="b_mid")(
            Down3(name="down3")(out3) + te(40, "te_mid"))  # 3x3x40

        h = jnp.concatenate([out3, Up1(name="up1")(mid)], axis=-1)  # 7x7x80
        out4 = Stage((40, 20, 20), name="b4")(h + te(80, "te4"))  # 7x7x20

        h = jnp.concatenate([out2, _conv_transpose(20, 4, 2, 1, name="up2")(out4)], axis=-1)
        out5 = Stage((20, 10, 10), name="b5")(h + te(40, "te5"))  # 14x14x10

        h = jnp.concatenate([out1, _conv_transpose(10, 4, 2, 1, name="up3")(out5)], axis=-1)
        out = Stage((10, 10, 10), normalize_last=False, name="b_out")(h + te(20, "te_out"))
        return _conv(1, 3, 1, 1, name="conv_out")(out)  # 28x28x1


def init_params(network: UNet, key) -> dict:
    """Parameters initialised as the tutorial's PyTorch modules are, without compiling.

    Conv, ConvTranspose and Linear weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    (PyTorch's defaults, fan_in as PyTorch counts it), LayerNorm scale 1 and bias 0, and
    the sinusoidal time table. The structure comes from ``jax.eval_shape``; the values
    from numpy seeded by ``key``, since compiling Flax's own initialisers costs ~20 s on a CPU.
    """
    x = jax.ShapeDtypeStruct((1, 28, 28, 1), jnp.float32)
    t = jax.ShapeDtypeStruct((1,), jnp.int32)
    shapes = jax.eval_shape(network.init, key, x, t)["params"]
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())

    def init_module(path: tuple[str, ...], leaves: dict) -> dict:
        if "embedding" in leaves:
            return {"embedding": sinusoidal_embedding(network.n_steps, network.time_emb_dim)}
        if path[-1:] == ("ln",):
            return {"scale": jnp.ones(leaves["scale"].shape), "bias": jnp.zeros(leaves["bias"].shape)}
        if "kernel" in leaves:
            # HWIO conv / (in, out) dense: fan_in = all but the last axis. Flax's transposed
            # kernel is (kh, kw, out, in): the same product is PyTorch's fan_in for it too.
            bound = 1.0 / np.sqrt(np.prod(leaves["kernel"].shape[:-1]))
            return {k: jnp.asarray(rng.uniform(-bound, bound, v.shape).astype(np.float32))
                    for k, v in sorted(leaves.items())}
        return {k: init_module(path + (k,), v) for k, v in leaves.items()}

    return init_module((), shapes)
