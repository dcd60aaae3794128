"""The whole model: UNet forward, forward noising, loss and gradients, on the same weights."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from ddpm_jax.convert import params_to_torch
from parity_tests import oracle
from parity_tests.bridge import max_rel, nchw, nhwc

UNET_ATOL = 1e-4  # the bound for whole-network outputs; observed ~1e-7 (see README)


@pytest.fixture(scope="module")
def jax_unet(jax_ddpm):
    return jax.jit(lambda params, x, t: jax_ddpm.network.apply({"params": params}, x, t))


@pytest.mark.parametrize("t_shape", ["(N,)", "(N, 1)"])
def test_unet_forward_random_weights(jax_unet, jax_params, torch_ddpm, batch, t_shape, observed):
    x0, t, _ = batch
    t_in = t if t_shape == "(N,)" else t[:, None]
    y_jax = np.asarray(jax_unet(jax_params, jnp.asarray(x0), jnp.asarray(t_in)))
    with torch.no_grad():
        y_torch = nhwc(torch_ddpm.backward(nchw(x0), torch.from_numpy(t_in)))
    observed("unet forward, random weights (abs)", np.abs(y_jax - y_torch).max())
    np.testing.assert_allclose(y_jax, y_torch, atol=UNET_ATOL, rtol=0)
    assert max_rel(y_jax, y_torch) < 1e-5


def test_forward_noising(jax_ddpm, torch_ddpm, batch, observed):
    x0, t, eta = batch
    want = oracle.forward(x0.astype(np.float64), t, eta.astype(np.float64))
    y_jax = np.asarray(jax_ddpm.forward(jnp.asarray(x0), jnp.asarray(t), jnp.asarray(eta)))
    y_torch = nhwc(torch_ddpm.forward(nchw(x0), torch.from_numpy(t), nchw(eta)))
    # Against float64: 1 - alpha_bar_0 = 1e-4 carries float32's 6e-8 rounding of alpha_bar,
    # 6e-4 relative, so sqrt(1 - alpha_bar) * eta is off by up to ~3e-6 in both frameworks.
    observed("forward noising: jax vs torch (abs)", np.abs(y_jax - y_torch).max())
    observed("forward noising: vs float64 oracle (abs)", max(np.abs(y_jax - want).max(),
                                                            np.abs(y_torch - want).max()))
    np.testing.assert_allclose(y_jax, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(y_torch, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(y_jax, y_torch, rtol=0, atol=1e-6)


def test_loss_and_gradients(jax_loss_and_grads, jax_params, torch_ddpm, batch, observed):
    x0, t, eta = batch
    loss_jax, grads_jax = jax_loss_and_grads(jax_params, jnp.asarray(x0), jnp.asarray(t), jnp.asarray(eta))
    torch_ddpm.zero_grad()
    loss_torch = torch_ddpm.loss(nchw(x0), torch.from_numpy(t), nchw(eta))
    loss_torch.backward()
    observed("loss (rel)", abs(float(loss_jax) - loss_torch.item()) / loss_torch.item())
    assert float(loss_jax) == pytest.approx(loss_torch.item(), rel=1e-5)

    # Gradients travel through the same conversion as weights.
    grads_as_torch = params_to_torch(grads_jax)
    largest = max(float(p.grad.abs().max()) for p in torch_ddpm.parameters() if p.grad is not None)
    for name, p in torch_ddpm.named_parameters():
        if name == "network.time_embed.weight" or name.startswith("network.b_out.2.ln"):
            assert p.grad is None  # frozen table; LayerNorm the tutorial never applies
            continue
        g_jax, g_torch = grads_as_torch[name], p.grad.numpy()
        if name.startswith("network.te1."):
            # te1 adds one constant per image to the 1-channel input, which b1.0's LayerNorm
            # over (C, H, W) then subtracts: its exact gradient is zero, and what both
            # frameworks compute is rounding noise, ~1e-11.
            assert np.abs(g_jax).max() < 1e-8 * largest and np.abs(g_torch).max() < 1e-8 * largest
            continue
        scale = np.abs(g_torch).max()
        observed("gradients, per parameter (rel to its max)", max_rel(g_jax, g_torch))
        assert np.abs(g_jax - g_torch).max() <= 1e-5 * scale, name
    # And the frozen table gets no gradient on the JAX side either.
    assert not np.any(np.asarray(grads_jax["time_embed"]["embedding"]))


def test_l2_loss_half_factor_is_caught(jax_ddpm, jax_params, torch_ddpm, batch):
    x0, t, eta = batch
    with torch.no_grad():
        mse = float(torch_ddpm.loss(nchw(x0), torch.from_numpy(t), nchw(eta)))
    eps = jax_ddpm.backward(jax_params, jax_ddpm.forward(jnp.asarray(x0), jnp.asarray(t), jnp.asarray(eta)),
                            jnp.asarray(t))
    l2 = float(jnp.mean(optax.l2_loss(eps, jnp.asarray(eta))))
    assert l2 == pytest.approx(mse / 2, rel=1e-5) and abs(l2 - mse) > 0.1 * mse


def test_out_of_range_t(jax_ddpm, jax_params, torch_ddpm, batch):
    """torch's raw embedding raises; JAX's raw take would clamp: both models refuse instead."""
    x0 = batch[0][:2]
    t = np.array([3, 1000])
    with pytest.raises(ValueError, match="0..999"):
        torch_ddpm.backward(nchw(x0), torch.from_numpy(t))
    with pytest.raises(ValueError, match="0..999"):
        jax_ddpm.backward(jax_params, jnp.asarray(x0), jnp.asarray(t))
    rows = jnp.arange(1000)
    assert int(rows[jnp.asarray(t)][1]) == 999  # the trap itself: indexing clamps silently
    assert int(jnp.take(rows, jnp.asarray(t))[1]) < 0  # take fills (NaN for floats)
