"""Models shared across the JAX tests, so each jitted function compiles once per session.

DDPM objects compare by value: every test that builds ``DDPM(n_steps=10)`` reuses the
same compiled train step and sampler.
"""

import jax
import pytest

from ddpm_jax import DDPM

SMALL_T = 10  # enough steps for every behaviour under test, cheap to sample


@pytest.fixture(scope="session")
def small_ddpm():
    return DDPM(n_steps=SMALL_T)


@pytest.fixture(scope="session")
def small_params(small_ddpm):
    return small_ddpm.init(jax.random.key(0))
