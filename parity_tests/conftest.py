"""Shared pieces of the parity suite: precision settings, one model in both frameworks.

On a GPU, XLA may run float32 convolutions and matmuls in TF32 and so may PyTorch:
both are told to use full float32 here, so tolerances mean the same on CPU and GPU.
"""

import jax
import numpy as np
import optax
import pytest
import torch

import ddpm_jax
from ddpm_jax.train import make_optimizer as jax_optimizer
from ddpm_torch.train import make_optimizer as torch_optimizer
from parity_tests.bridge import T, adam_batches, nchw, torch_model_from

jax.config.update("jax_default_matmul_precision", "highest")
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_num_threads(1)  # small batches; see ddpm_torch/tests/conftest.py


@pytest.fixture(scope="session")
def jax_ddpm():
    return ddpm_jax.DDPM(n_steps=T)


@pytest.fixture(scope="session")
def jax_params(jax_ddpm):
    return jax_ddpm.init(jax.random.key(0))


@pytest.fixture(scope="session")
def torch_ddpm(jax_params):
    return torch_model_from(jax_params)


@pytest.fixture(scope="session")
def batch():
    """Four images, their timesteps (early, middle, late) and noise: fixed arrays for both sides."""
    rng = np.random.default_rng(0)
    x0 = np.clip(rng.normal(0, 0.6, (4, 28, 28, 1)), -1, 1).astype(np.float32)
    t = np.array([0, 1, 500, 999], np.int64)
    eta = rng.normal(size=(4, 28, 28, 1)).astype(np.float32)
    return x0, t, eta


@pytest.fixture(scope="session")
def jax_loss_and_grads(jax_ddpm):
    return jax.jit(jax.value_and_grad(jax_ddpm.loss))


@pytest.fixture(scope="session")
def trained_both(jax_ddpm, jax_params):
    """Five Adam steps from the same weights on the same injected batches, in each framework.

    Returns (jax params, jax losses, torch DDPM, torch losses).
    """
    tx = jax_optimizer(1e-3)

    @jax.jit
    def adam_step(params, opt_state, x0, t, eta):
        loss, grads = jax.value_and_grad(jax_ddpm.loss)(params, x0, t, eta)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    params, opt_state, jax_losses = jax_params, tx.init(jax_params), []
    for x0, t, eta in adam_batches(5):
        params, opt_state, loss = adam_step(params, opt_state, x0, t, eta)
        jax_losses.append(float(loss))

    model = torch_model_from(jax_params)
    optimizer = torch_optimizer(model, 1e-3)
    torch_losses = []
    for x0, t, eta in adam_batches(5):
        optimizer.zero_grad()
        loss = model.loss(nchw(x0), torch.from_numpy(t), nchw(eta))
        loss.backward()
        optimizer.step()
        torch_losses.append(loss.item())
    return params, jax_losses, model, torch_losses


_OBSERVED: dict[str, float] = {}


@pytest.fixture
def observed():
    """Records the largest difference seen per test group; printed after the run."""
    def record(group: str, value: float) -> None:
        _OBSERVED[group] = max(_OBSERVED.get(group, 0.0), float(value))
    return record


def pytest_terminal_summary(terminalreporter):
    if _OBSERVED:
        terminalreporter.section("parity: largest differences observed")
        for group, value in sorted(_OBSERVED.items()):
            terminalreporter.write_line(f"{group:<48} {value:.3g}")
