"""Adam steps: the same weights, batches, timesteps and noise give the same weights after.

The noise is injected as arrays (``adam_batches``): the two frameworks' random streams
never match. The steps themselves run in the ``trained_both`` fixture (conftest.py).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddpm_jax.convert import params_to_torch


def test_losses_along_the_way(trained_both, observed):
    _, jax_losses, _, torch_losses = trained_both
    observed("adam: loss per step (rel)", np.max(np.abs(np.subtract(jax_losses, torch_losses)) /
                                                np.abs(torch_losses)))
    np.testing.assert_allclose(jax_losses, torch_losses, rtol=1e-5)


def test_weights_after_adam_steps(trained_both, observed):
    params, _, model, _ = trained_both
    jax_weights = params_to_torch(params)
    te1, others = [], []
    for name, p in model.state_dict().items():
        diff = np.abs(jax_weights[name] - p.numpy()).ravel()
        (te1 if name.startswith("network.te1.") else others).append(diff)
    te1, others = np.concatenate(te1), np.concatenate(others)
    observed("adam: weights after 5 steps (abs)", others.max())
    observed("adam: share of weights off by > 1e-6", np.mean(others > 1e-6))
    observed("adam: te1 weights (abs, zero exact gradient)", te1.max())
    # Adam divides each gradient by its own running size, so a weight whose gradient is
    # tiny moves by a sizeable fraction of lr = 1e-3 in whichever direction rounding
    # gives it. Nearly all weights agree to 1e-6 and none by worse than 1e-5 (1% of lr).
    assert np.mean(others > 1e-6) < 1e-3
    assert others.max() < 1e-5
    # te1's exact gradient is zero (see test_model): Adam turns its ~1e-11 rounding noise
    # into moves of up to lr * |g| / eps ~ 1e-6 per step, in either direction.
    assert te1.max() < 1e-4


def test_time_table_does_not_move(trained_both, jax_params):
    params, _, model, _ = trained_both
    table = np.asarray(jax_params["time_embed"]["embedding"])
    np.testing.assert_array_equal(np.asarray(params["time_embed"]["embedding"]), table)
    np.testing.assert_array_equal(model.network.time_embed.weight.detach().numpy(), table)


def test_adamw_on_all_parameters_is_caught(jax_loss_and_grads, jax_params, batch):
    """optax.adamw decays every leaf, the frozen table included: the table moves."""
    tx = optax.adamw(1e-3)
    _, grads = jax_loss_and_grads(jax_params, *map(jnp.asarray, batch))
    updates, _ = tx.update(grads, tx.init(jax_params), jax_params)
    moved = optax.apply_updates(jax_params, updates)["time_embed"]["embedding"]
    assert not np.array_equal(np.asarray(moved), np.asarray(jax_params["time_embed"]["embedding"]))
