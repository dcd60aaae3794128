"""Schedules and the time table: JAX vs PyTorch vs the float64 oracle."""

import numpy as np
import pytest
import torch

import ddpm_jax
import ddpm_torch
from parity_tests import oracle


@pytest.mark.parametrize("n_steps", [10, 1000])
def test_schedules_agree_with_the_oracle_and_each_other(n_steps):
    jax_s = [np.asarray(a) for a in ddpm_jax.make_schedule(n_steps)]
    torch_s = [a.numpy() for a in ddpm_torch.make_schedule(n_steps)]
    for name, j, t, o in zip(("betas", "alphas", "alpha_bars"), jax_s, torch_s, oracle.schedule(n_steps)):
        assert j.dtype == t.dtype == np.float32, name
        np.testing.assert_allclose(j, o, rtol=2e-6, err_msg=f"jax {name}")
        np.testing.assert_allclose(t, o, rtol=2e-6, err_msg=f"torch {name}")
        np.testing.assert_allclose(j, t, rtol=2e-6, err_msg=name)


def test_cumprod_and_prefix_products_are_not_bit_identical():
    """Why the schedule tolerance is 2e-6 and not 0: the two routes round differently."""
    jax_bars = np.asarray(ddpm_jax.make_schedule(1000).alpha_bars)
    torch_bars = ddpm_torch.make_schedule(1000).alpha_bars.numpy()
    assert not np.array_equal(jax_bars, torch_bars)


def test_embedding_tables_are_bit_identical():
    j = np.asarray(ddpm_jax.sinusoidal_embedding(1000, 100))
    t = ddpm_torch.sinusoidal_embedding(1000, 100).numpy()
    np.testing.assert_array_equal(j, t)
    np.testing.assert_array_equal(j, oracle.embedding(1000, 100).astype(np.float32))


def test_textbook_embedding_is_caught():
    table = ddpm_torch.sinusoidal_embedding(1000, 100).numpy()
    assert np.abs(table - oracle.embedding(1000, 100, exponent=2)).max() > 0.5


def test_a_table_built_in_float32_is_caught():
    """Built in float32 (as the tutorial itself does), the table drifts at large t."""
    t = torch.arange(1000, dtype=torch.float32)[:, None]
    w = 10_000.0 ** (-4.0 * torch.arange(50, dtype=torch.float32) / 100)
    sin32 = torch.sin(t * w).numpy()
    table = ddpm_torch.sinusoidal_embedding(1000, 100).numpy()
    drift = np.abs(sin32 - table[:, 0::2]).max()
    assert 1e-6 < drift < 1e-3
