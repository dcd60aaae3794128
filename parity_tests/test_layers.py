"""Every layer kind of the model, one at a time, with converted random weights.

Shapes are non-square (c_in != c_out) where the model allows, so a swapped channel
order fails here even though the model's own transposed convs are square. Each trap of
DESIGN.md section 3 also has a check that the wrong port would be caught.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from ddpm_jax import unet as jax_unet
from ddpm_jax.convert import _to_jax_layout
from ddpm_torch import unet as torch_unet
from parity_tests.bridge import max_rel, nchw, nhwc

TOL = 2e-6  # one layer in float32: rounding of sums of up to 9 * 80 products


def converted(torch_module: torch.nn.Module) -> dict:
    """Flax params for a single torch layer (conv, transposed conv, linear, layer norm)."""
    out = {}
    for name, p in torch_module.named_parameters():
        leaf = {"weight": "scale" if isinstance(torch_module, torch.nn.LayerNorm) else "kernel",
                "bias": "bias"}[name]
        out[leaf] = jnp.asarray(_to_jax_layout(leaf, p.detach().numpy()))
    return out


def randomize(module: torch.nn.Module) -> torch.nn.Module:
    """Non-symmetric random values everywhere, affine parameters included."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    return module


def images(c, h, w, seed=1, n=3, offset=0.0):
    return np.random.default_rng(seed).normal(offset, 1.0, (n, h, w, c)).astype(np.float32)


def run_both(flax_layer, torch_layer, x):
    y_jax = flax_layer.apply({"params": converted(torch_layer)}, jnp.asarray(x))
    with torch.no_grad():
        y_torch = torch_layer(nchw(x))
    return np.asarray(y_jax), nhwc(y_torch)


@pytest.fixture
def observe_layer(observed, request):
    """Records max_rel for this layer test's group (the test name without parameters)."""
    group = "layer: " + request.node.originalname.removeprefix("test_")
    return lambda a, b: observed(group + " (rel)", max_rel(a, b))


CONVS = [  # (kernel, stride, padding, c_in, c_out, size): the model's four conv configurations
    (3, 1, 1, 10, 20, 14),  # Block convs (and conv_out, 10 -> 1)
    (4, 2, 1, 10, 20, 28),  # down1, down2
    (2, 1, 0, 40, 24, 7),  # down3.0: 7x7 -> 6x6
    (3, 1, 1, 10, 1, 28),  # conv_out
]


@pytest.mark.parametrize("k, s, p, c_in, c_out, size", CONVS)
def test_conv(k, s, p, c_in, c_out, size, observe_layer):
    torch_conv = randomize(torch.nn.Conv2d(c_in, c_out, k, s, p))
    x = images(c_in, size, size)
    y_jax, y_torch = run_both(jax_unet._conv(c_out, k, s, p), torch_conv, x)
    assert y_jax.shape == y_torch.shape
    observe_layer(y_jax, y_torch)
    assert max_rel(y_jax, y_torch) < TOL


def test_flax_default_same_padding_is_caught():
    torch_conv = torch.nn.Conv2d(40, 40, 2, 1, 0)
    y = nn.Conv(40, (2, 2)).apply({"params": converted(torch_conv)}, jnp.asarray(images(40, 7, 7)))
    assert y.shape[1:3] == (7, 7) != tuple(torch_conv(nchw(images(40, 7, 7))).shape[2:])


def test_conv_without_kernel_transpose_is_caught():
    torch_conv = randomize(torch.nn.Conv2d(10, 10, 3, 1, 1))
    params = converted(torch_conv)
    params["kernel"] = jnp.asarray(torch_conv.weight.detach().numpy().reshape(3, 3, 10, 10))  # reshaped
    y_jax = jax_unet._conv(10, 3).apply({"params": params}, jnp.asarray(images(10, 14, 14)))
    assert max_rel(np.asarray(y_jax), nhwc(torch_conv(nchw(images(10, 14, 14))))) > 0.1


@pytest.mark.parametrize("k, s, p, size_in, size_out", [(4, 2, 1, 3, 6), (2, 1, 0, 6, 7), (4, 2, 1, 7, 14)])
def test_conv_transpose(k, s, p, size_in, size_out, observe_layer):
    torch_conv = randomize(torch.nn.ConvTranspose2d(12, 20, k, s, p))  # in != out
    x = images(12, size_in, size_in)
    y_jax, y_torch = run_both(jax_unet._conv_transpose(20, k, s, p), torch_conv, x)
    assert y_jax.shape == y_torch.shape == (3, size_out, size_out, 20)
    observe_layer(y_jax, y_torch)
    assert max_rel(y_jax, y_torch) < TOL


def test_conv_transpose_without_kernel_flip_is_caught():
    torch_conv = randomize(torch.nn.ConvTranspose2d(20, 20, 4, 2, 1))
    x = images(20, 7, 7)
    unflipped = nn.ConvTranspose(20, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)))
    params = converted(torch_conv)
    params["kernel"] = params["kernel"].transpose(0, 1, 3, 2)  # (kh, kw, in, out) for this layout
    y_jax = unflipped.apply({"params": params}, jnp.asarray(x))
    with torch.no_grad():
        assert max_rel(np.asarray(y_jax), nhwc(torch_conv(nchw(x)))) > 0.1


def block_layer_norm(fast_variance=False):
    return nn.LayerNorm(epsilon=1e-5, reduction_axes=(-3, -2, -1), feature_axes=(-3, -2, -1),
                        use_fast_variance=fast_variance)


def test_layer_norm_over_c_h_w(observe_layer):
    torch_ln = randomize(torch.nn.LayerNorm((10, 14, 14)))
    y_jax, y_torch = run_both(block_layer_norm(), torch_ln, images(10, 14, 14))
    observe_layer(y_jax, y_torch)
    assert max_rel(y_jax, y_torch) < TOL


def test_layer_norm_with_a_large_mean_needs_two_pass_variance():
    """Flax's default E[x^2] - E[x]^2 cancels catastrophically where torch's two passes do not."""
    torch_ln = randomize(torch.nn.LayerNorm((10, 14, 14)))
    x = images(10, 14, 14) * 0.01 + 3.0
    y_jax, y_torch = run_both(block_layer_norm(), torch_ln, x)
    # x's own float32 rounding (3 * 6e-8) divided by its spread (0.01) bounds what can agree.
    assert max_rel(y_jax, y_torch) < 1e-4
    y_fast, _ = run_both(block_layer_norm(fast_variance=True), torch_ln, x)
    assert max_rel(y_fast, y_torch) > 1e-3


def test_layer_norm_traps_are_caught():
    torch_ln = randomize(torch.nn.LayerNorm((10, 14, 14)))
    x = images(10, 14, 14) * 0.003  # variance near eps: eps 1e-5 vs 1e-6 matters
    with torch.no_grad():
        want = nhwc(torch_ln(nchw(x)))
    wrong_eps = nn.LayerNorm(epsilon=1e-6, reduction_axes=(-3, -2, -1), feature_axes=(-3, -2, -1),
                             use_fast_variance=False)
    assert max_rel(np.asarray(wrong_eps.apply({"params": converted(torch_ln)}, jnp.asarray(x))), want) > 1e-3
    reshaped = converted(torch_ln)
    reshaped["scale"] = jnp.asarray(torch_ln.weight.detach().numpy().reshape(14, 14, 10))
    right_axes = nn.LayerNorm(epsilon=1e-5, reduction_axes=(-3, -2, -1), feature_axes=(-3, -2, -1))
    assert max_rel(np.asarray(right_axes.apply({"params": reshaped}, jnp.asarray(x))), want) > 0.1
    with pytest.raises(Exception):  # Flax's default: last axis only, parameters of shape (C,)
        nn.LayerNorm().apply({"params": converted(torch_ln)}, jnp.asarray(x))


def test_linear(observe_layer):
    torch_linear = randomize(torch.nn.Linear(100, 7))
    x = np.random.default_rng(2).normal(size=(5, 100)).astype(np.float32)
    y_jax = np.asarray(nn.Dense(7).apply({"params": converted(torch_linear)}, jnp.asarray(x)))
    with torch.no_grad():
        y_torch = torch_linear(torch.from_numpy(x)).numpy()
    observe_layer(y_jax, y_torch)
    assert max_rel(y_jax, y_torch) < TOL


def test_square_linear_without_transpose_is_caught():
    torch_linear = randomize(torch.nn.Linear(20, 20))
    params = converted(torch_linear)
    params["kernel"] = params["kernel"].T  # torch's (out, in) used as is: runs silently
    x = np.random.default_rng(2).normal(size=(5, 20)).astype(np.float32)
    y_jax = nn.Dense(20).apply({"params": params}, jnp.asarray(x))
    with torch.no_grad():
        assert max_rel(np.asarray(y_jax), torch_linear(torch.from_numpy(x)).numpy()) > 0.1


def test_time_mlp(observe_layer):
    torch_te = randomize(torch_unet.TimeMLP(100, 20))
    params = {"0": converted(torch_te[0]), "2": converted(torch_te[2])}
    x = np.random.default_rng(3).normal(size=(4, 100)).astype(np.float32)
    y_jax = jax_unet.TimeMLP(20).apply({"params": params}, jnp.asarray(x))
    with torch.no_grad():
        y_torch = torch_te(torch.from_numpy(x))
    assert y_jax.shape == (4, 1, 1, 20) and tuple(y_torch.shape) == (4, 20, 1, 1)
    observe_layer(np.asarray(y_jax)[:, 0, 0], y_torch.numpy()[:, :, 0, 0])
    assert max_rel(np.asarray(y_jax)[:, 0, 0], y_torch.numpy()[:, :, 0, 0]) < TOL


@pytest.mark.parametrize("normalize", [True, False])
def test_block(normalize, observe_layer):
    torch_block = randomize(torch_unet.Block((10, 14, 14), 10, 20, normalize=normalize))
    params = {"conv1": converted(torch_block.conv1), "conv2": converted(torch_block.conv2)}
    if normalize:
        params["ln"] = converted(torch_block.ln)
    x = images(10, 14, 14)
    y_jax = np.asarray(jax_unet.Block(20, normalize=normalize).apply({"params": params}, jnp.asarray(x)))
    with torch.no_grad():
        y_torch = nhwc(torch_block(nchw(x)))
    observe_layer(y_jax, y_torch)
    assert max_rel(y_jax, y_torch) < 1e-5
