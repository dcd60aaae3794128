"""The reverse process: one step for both sigma choices, a whole short trajectory with
injected noise, and which steps become GIF frames."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import ddpm_jax
import ddpm_torch
from ddpm_io.images import gif_frame_steps
from parity_tests import oracle
from parity_tests.bridge import nchw, nhwc, torch_model_from

SHORT_T = 10


@pytest.mark.parametrize("sigma", ["beta", "posterior"])
@pytest.mark.parametrize("t", [0, 1, 500, 999])
def test_reverse_step_with_injected_eps_and_z(sigma, t, observed):
    rng = np.random.default_rng(t)
    x, eps, z = (rng.normal(size=(2, 28, 28, 1)).astype(np.float32) for _ in range(3))
    want = oracle.reverse_step(x.astype(np.float64), t, eps.astype(np.float64), z.astype(np.float64), sigma)
    got_jax = np.asarray(ddpm_jax.reverse_step(ddpm_jax.make_schedule(), jnp.asarray(x), t,
                                               jnp.asarray(eps), jnp.asarray(z), sigma))
    got_torch = nhwc(ddpm_torch.reverse_step(ddpm_torch.make_schedule(), nchw(x), t, nchw(eps),
                                             nchw(z), sigma))
    observed("reverse step: jax vs torch (abs)", np.abs(got_jax - got_torch).max())
    observed("reverse step: vs float64 oracle (abs)",
             max(np.abs(got_jax - want).max(), np.abs(got_torch - want).max()))
    # At t = 0 the coefficient (1 - alpha_0) / sqrt(1 - alpha_bar_0) = 0.01 is built from
    # 1 - 0.9999 in float32 (relative error up to 6e-4): ~1e-5 off float64 for |eps| ~ 4.
    np.testing.assert_allclose(got_jax, want, rtol=0, atol=2e-5)
    np.testing.assert_allclose(got_torch, want, rtol=0, atol=2e-5)
    np.testing.assert_allclose(got_jax, got_torch, rtol=0, atol=2e-6)


@pytest.mark.parametrize("sigma", ["beta", "posterior"])
def test_reverse_step_with_the_network(jax_ddpm, jax_params, torch_ddpm, sigma, observed):
    rng = np.random.default_rng(7)
    x, z = (rng.normal(size=(2, 28, 28, 1)).astype(np.float32) for _ in range(2))
    step = jax.jit(jax_ddpm.step, static_argnames="sigma")
    for t in (999, 400, 1, 0):
        got_jax = np.asarray(step(jax_params, jnp.asarray(x), t, jnp.asarray(z), sigma=sigma))
        with torch.no_grad():
            got_torch = nhwc(torch_ddpm.step(nchw(x), t, nchw(z), sigma))
        observed("reverse step with the UNet (abs)", np.abs(got_jax - got_torch).max())
        np.testing.assert_allclose(got_jax, got_torch, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def short_models():
    jax_model = ddpm_jax.DDPM(n_steps=SHORT_T)
    params = jax_model.init(jax.random.key(1))
    return jax_model, params, torch_model_from(params, n_steps=SHORT_T)


@pytest.mark.parametrize("sigma", ["beta", "posterior"])
def test_whole_short_trajectory_with_injected_noise(short_models, sigma, observed):
    jax_model, params, torch_model = short_models
    noise = np.random.default_rng(3).normal(size=(SHORT_T + 1, 3, 28, 28, 1)).astype(np.float32)
    step = jax.jit(jax_model.step, static_argnames="sigma")
    x = jnp.asarray(noise[0])
    states = []
    for idx, t in enumerate(range(SHORT_T - 1, -1, -1)):
        x = step(params, x, t, jnp.asarray(noise[1 + idx]), sigma=sigma)
        states.append(np.asarray(x))
    x0_torch, frames_torch = torch_model.sample(3, n_frames=4, sigma=sigma, noise=torch.from_numpy(
        np.ascontiguousarray(noise.transpose(0, 1, 4, 2, 3))))
    observed("short trajectory, x0 (abs)", np.abs(states[-1] - nhwc(x0_torch)).max())
    np.testing.assert_allclose(states[-1], nhwc(x0_torch), rtol=0, atol=1e-5)

    # Which loop iterations torch kept as frames, found by matching the trajectory.
    kept_torch = [int(np.argmin([np.abs(s - nhwc(f)).max() for s in states])) for f in frames_torch]
    assert kept_torch == oracle.gif_frames_kept(SHORT_T, 4) == [0, 3, 6, 9]


def test_jax_sampler_keeps_the_same_frames(short_models):
    """JAX's scanned sampler stores states at the iterations the tutorial's rule keeps."""
    jax_model, params, _ = short_models
    key = jax.random.key(5)
    _, frames = jax_model.sample(params, key, n_samples=2, n_frames=4)
    init_key, noise_key = jax.random.split(key)  # the sampler's documented key use
    x = jax.random.normal(init_key, (2, 28, 28, 1))
    step = jax.jit(jax_model.step, static_argnames="sigma")
    states = []
    for idx, t in enumerate(range(SHORT_T - 1, -1, -1)):
        x = step(params, x, t, jax.random.normal(jax.random.fold_in(noise_key, idx), x.shape))
        states.append(np.asarray(x))
    kept = [int(np.argmin([np.abs(s - np.asarray(f)).max() for s in states])) for f in frames]
    assert kept == oracle.gif_frames_kept(SHORT_T, 4)


@pytest.mark.parametrize("n_steps, n_frames", [(1000, 100), (1000, 7), (10, 100), (50, 3)])
def test_frame_schedule_matches_the_tutorial(n_steps, n_frames):
    assert gif_frame_steps(n_steps, n_frames).tolist() == oracle.gif_frames_kept(n_steps, n_frames)
