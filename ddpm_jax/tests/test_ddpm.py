import flax.linen as nn
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from ddpm_jax import DDPM, make_schedule, reverse_step
from ddpm_jax.ddpm import _sample


class ZeroNoise(nn.Module):
    """Predicts no noise: lets sampler bookkeeping be tested at T = 1000 cheaply."""

    n_steps: int

    @nn.compact
    def __call__(self, x, t):
        return jnp.zeros_like(x)


def float64_schedule(n_steps=1000, min_beta=1e-4, max_beta=0.02):
    betas = np.linspace(min_beta, max_beta, n_steps, dtype=np.float64)
    return betas, 1 - betas, np.cumprod(1 - betas)


def test_schedule_against_float64():
    schedule = make_schedule()
    betas, alphas, alpha_bars = float64_schedule()
    for got, want in zip(schedule, (betas, alphas, alpha_bars)):
        assert got.dtype == jnp.float32 and got.shape == (1000,)
        np.testing.assert_allclose(np.asarray(got), want, rtol=2e-6)
    assert float(schedule.alpha_bars[999]) == pytest.approx(4.0358e-5, rel=2e-4)
    assert float(schedule.betas[0]) == pytest.approx(1e-4) and float(schedule.betas[-1]) == pytest.approx(0.02)


def test_reverse_step_known_values():
    schedule = make_schedule()
    ones = jnp.ones((1, 28, 28, 1))
    for z in (0.0, 5.0, -3.0):  # z is not used at t = 0
        x = reverse_step(schedule, ones, 0, ones, z * ones)
        np.testing.assert_allclose(np.asarray(x), 0.9900495, rtol=1e-6)
    x = reverse_step(schedule, ones, 999, ones, 0 * ones)
    np.testing.assert_allclose(np.asarray(x), 0.9899491, rtol=1e-6)


@pytest.mark.parametrize("sigma", ["beta", "posterior"])
def test_reverse_step_noise_scale(sigma):
    schedule = make_schedule()
    betas, alphas, alpha_bars = float64_schedule()
    t = 500
    x, eps, z = (jnp.full((1, 28, 28, 1), v) for v in (0.3, -0.2, 1.0))
    mean = (0.3 + 0.2 * (1 - alphas[t]) / np.sqrt(1 - alpha_bars[t])) / np.sqrt(alphas[t])
    var = betas[t] if sigma == "beta" else betas[t] * (1 - alpha_bars[t - 1]) / (1 - alpha_bars[t])
    got = reverse_step(schedule, x, t, eps, z, sigma)
    np.testing.assert_allclose(np.asarray(got), mean + np.sqrt(var), rtol=2e-6)


def test_forward_noising(small_ddpm):
    x0 = jnp.full((2, 28, 28, 1), 0.5)
    eta = jnp.full((2, 28, 28, 1), -1.0)
    out = small_ddpm.forward(x0, jnp.array([0, 9]), eta)
    ab = np.asarray(small_ddpm.schedule.alpha_bars)[[0, 9]]
    np.testing.assert_allclose(np.asarray(out[:, 0, 0, 0]), np.sqrt(ab) * 0.5 - np.sqrt(1 - ab), rtol=1e-6)


def test_t_as_n_or_n_by_1_is_the_same(small_ddpm, small_params):
    x = jax.random.normal(jax.random.key(1), (3, 28, 28, 1))
    t = jnp.array([0, 4, 9])
    loss = jax.jit(small_ddpm.loss)
    a = loss(small_params, x, t, x)
    b = loss(small_params, x, t[:, None], x)
    assert float(a) == float(b)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d, p: d.backward(p, jnp.zeros((2, 1, 28, 28)), jnp.array([0, 1])), r"shape \(N, 28, 28, 1\)"),
        (lambda d, p: d.backward(p, jnp.zeros((2, 28, 28, 1)), jnp.array([0, 10])), r"0\.\.9"),
        (lambda d, p: d.backward(p, jnp.zeros((2, 28, 28, 1)), jnp.array([-1, 0])), r"0\.\.9"),
        (lambda d, p: d.backward(p, jnp.zeros((2, 28, 28, 1)), jnp.array([0, 1, 2])), r"shape \(2,\)"),
        (lambda d, p: d.backward(p, jnp.zeros((2, 28, 28, 1)), jnp.array([0.5, 1.0])), "integer"),
        (lambda d, p: d.forward(jnp.zeros((2, 28, 28, 1), jnp.int32), jnp.array([0, 1]),
                                jnp.zeros((2, 28, 28, 1))), "floating point"),
        (lambda d, p: d.step(p, jnp.zeros((2, 28, 28, 1)), 10, jnp.zeros((2, 28, 28, 1))), r"0\.\.9"),
        (lambda d, p: d.step(p, jnp.zeros((2, 28, 28, 1)), 3, jnp.zeros((2, 28, 28, 1)), "ddim"), "sigma"),
        (lambda d, p: d.sample(p, jax.random.key(0), n_samples=0), "n_samples"),
        (lambda d, p: d.sample(p, jax.random.key(0), n_frames=0), "n_frames"),
        (lambda d, p: d.forward(jnp.full((2, 28, 28, 1), 255.0), jnp.array([0, 1]),
                                jnp.zeros((2, 28, 28, 1))), r"scaled to \[-1, 1\].*0 to 255|255"),
        (lambda d, p: d.backward(p, jnp.full((2, 28, 28, 1), jnp.nan), jnp.array([0, 1])), "NaN"),
        (lambda d, p: d.step(p, jnp.zeros((2, 28, 28, 1)), 3, None), "z may be None only at t = 0"),
        (lambda d, p: d.backward(p, [[0.0]], jnp.array([0])), "numpy or JAX array"),
        (lambda d, p: DDPM(image_shape=(32, 32, 1)), "28x28x1"),
    ],
    ids=["nchw", "t-too-big", "t-negative", "t-count", "t-float", "x-int", "step-t", "sigma",
         "no-samples", "no-frames", "unscaled-x0", "nan-x", "z-none", "list-x", "image-shape"],
)
def test_bad_input_is_a_clear_error(small_ddpm, small_params, call, message):
    with pytest.raises(ValueError, match=message):
        call(small_ddpm, small_params)


def test_sampler_keeps_only_the_gif_frames():
    ddpm = DDPM(ZeroNoise(1000), n_steps=1000)
    x0, frames = ddpm.sample({}, jax.random.key(0), n_samples=4, n_frames=100)
    assert x0.shape == (4, 28, 28, 1)
    assert frames.shape == (100, 4, 28, 28, 1)
    np.testing.assert_array_equal(np.asarray(frames[-1]), np.asarray(x0))
    assert not np.array_equal(np.asarray(frames[0]), np.asarray(frames[1]))


def test_sampler_matches_a_python_loop_of_steps(small_ddpm, small_params):
    """The scanned sampler is the reverse step applied T times with the documented keys."""
    key = jax.random.key(3)
    x0, frames = small_ddpm.sample(small_params, key, n_samples=2, n_frames=4, sigma="posterior")
    init_key, noise_key = jax.random.split(key)
    x = jax.random.normal(init_key, (2, 28, 28, 1))
    step = jax.jit(small_ddpm.step, static_argnames="sigma")
    for idx, t in enumerate(range(9, -1, -1)):
        z = jax.random.normal(jax.random.fold_in(noise_key, idx), x.shape)
        x = step(small_params, x, t, z, sigma="posterior")
    np.testing.assert_allclose(np.asarray(x0), np.asarray(x), atol=1e-5)
    assert frames.shape[0] == 4


def test_traced_sampler_does_not_grow_with_t():
    def n_equations(jaxpr):
        total = 0
        for eqn in jaxpr.eqns:
            total += 1
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                total += n_equations(sub)
        return total

    sizes = []
    for n_steps in (10, 1000):
        ddpm = DDPM(n_steps=n_steps)
        params = jax.eval_shape(ddpm.network.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)),
                                jnp.zeros((1,), jnp.int32))["params"]
        jaxpr = jax.make_jaxpr(_sample.__wrapped__, static_argnums=(0, 3, 4, 5, 6))(
            ddpm, params, jax.random.key(0), 4, 5, "beta", None)
        sizes.append(n_equations(jaxpr.jaxpr))
    assert sizes[0] == sizes[1]
