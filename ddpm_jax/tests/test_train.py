import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddpm_io import load_dataset, scale_images
from ddpm_jax import create_train_state, train_step
from ddpm_jax.train import load_params, restore_train_state, save_checkpoint

BATCH = 32  # the CLI test trains with the same batch size: one compilation for both


@pytest.fixture(scope="module")
def digits(mnist_dir):
    images, _ = load_dataset("mnist", data_dir=mnist_dir, limit=256)
    return jnp.asarray(scale_images(images))


def test_training_lowers_the_loss_on_real_digits(small_ddpm, digits):
    state = create_train_state(jax.random.key(0), small_ddpm)
    table = np.array(state.params["time_embed"]["embedding"])
    # A fixed evaluation: the same images, timesteps and noise before and after.
    eval_x = digits[:BATCH]
    eval_t = jax.random.randint(jax.random.key(1), (BATCH,), 0, small_ddpm.n_steps)
    eval_eta = jax.random.normal(jax.random.key(2), eval_x.shape)
    loss = jax.jit(small_ddpm.loss)
    before = float(loss(state.params, eval_x, eval_t, eval_eta))
    key = jax.random.key(3)
    losses = []
    for i in range(48):
        batch = digits[(i % 8) * BATCH:(i % 8 + 1) * BATCH]
        state, step_loss = train_step(state, batch, key)
        losses.append(float(step_loss))
    after = float(loss(state.params, eval_x, eval_t, eval_eta))
    assert int(state.step) == 48
    assert np.isfinite(losses).all()
    assert after < 0.8 * before, (before, after)
    # The frozen time table has not moved by a single bit.
    np.testing.assert_array_equal(np.asarray(state.params["time_embed"]["embedding"]), table)


def test_steps_draw_fresh_noise_from_the_step_counter(small_ddpm, digits):
    """fold_in(key, step): same weights, key and batch, another step count, another draw."""
    state = create_train_state(jax.random.key(0), small_ddpm)
    copy = lambda s: jax.tree_util.tree_map(jnp.copy, s)  # train_step donates its state
    _, at_step_0 = train_step(copy(state), digits[:BATCH], jax.random.key(5))
    _, again_0 = train_step(copy(state), digits[:BATCH], jax.random.key(5))
    _, at_step_1 = train_step(copy(state).replace(step=state.step + 1), digits[:BATCH],
                              jax.random.key(5))
    assert float(at_step_0) == float(again_0)
    assert float(at_step_0) != float(at_step_1)


def test_checkpoint_round_trip(small_ddpm, digits, tmp_path):
    state = create_train_state(jax.random.key(0), small_ddpm)
    state, _ = train_step(state, digits[:BATCH], jax.random.key(1))
    save_checkpoint(tmp_path / "c.msgpack", state, {"epoch": 1, "best_loss": 0.5})
    fresh = create_train_state(jax.random.key(9), small_ddpm)
    restored, info = restore_train_state(tmp_path / "c.msgpack", fresh)
    assert info == {"epoch": 1, "best_loss": 0.5} and int(restored.step) == 1
    for a, b in zip(jax.tree_util.tree_leaves((state.params, state.opt_state)),
                    jax.tree_util.tree_leaves((restored.params, restored.opt_state))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    params = load_params(tmp_path / "c.msgpack")
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(state.params)


def test_unreadable_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_params(tmp_path / "missing.msgpack")
    (tmp_path / "bad.msgpack").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_params(tmp_path / "bad.msgpack")


def test_learning_rate_must_be_positive(small_ddpm):
    with pytest.raises(ValueError, match="learning rate"):
        create_train_state(jax.random.key(0), small_ddpm, learning_rate=0.0)


def test_train_refuses_to_overwrite_a_trained_run(small_ddpm, tmp_path):
    from ddpm_jax import train

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.pt").write_bytes(b"a torch run's weights")
    with pytest.raises(FileExistsError, match="already holds a trained run"):
        train(small_ddpm, np.zeros((64, 28, 28, 1), np.uint8), tmp_path, epochs=1, batch_size=32)
    assert (tmp_path / "checkpoints" / "best.pt").read_bytes() == b"a torch run's weights"


def test_train_step_checks_its_batch(small_ddpm):
    state = create_train_state(jax.random.key(0), small_ddpm)
    with pytest.raises(ValueError, match=r"scaled to \[-1, 1\]"):
        train_step(state, jnp.full((BATCH, 28, 28, 1), 255.0), jax.random.key(0))
    with pytest.raises(ValueError, match="floating point"):
        train_step(state, jnp.zeros((BATCH, 28, 28, 1), jnp.uint8), jax.random.key(0))
