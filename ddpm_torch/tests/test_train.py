import numpy as np
import pytest
import torch

from ddpm_io import load_dataset, scale_images
from ddpm_io.runs import RunDir
from ddpm_torch.ddpm import DDPM
from ddpm_torch.train import (
    CHECKPOINT_SUFFIX,
    create_train_state,
    load_model_state,
    make_optimizer,
    noise_generator,
    read_checkpoint,
    restore_train_state,
    save_checkpoint,
    train,
    train_step,
)
from ddpm_torch.unet import UNet, sinusoidal_embedding

T = 10


def batch(n=4, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def weights(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_train_step_moves_the_weights_but_not_the_frozen_ones():
    state = create_train_state(DDPM(n_steps=T), seed=0)
    before = weights(state.ddpm)
    loss = train_step(state, batch(), noise_generator(0))
    assert np.isfinite(float(loss)) and not loss.requires_grad and state.step == 1
    after = state.ddpm.state_dict()
    frozen = {"network.time_embed.weight", "network.b_out.2.ln.weight", "network.b_out.2.ln.bias"}
    assert {k for k in before if torch.equal(before[k], after[k])} == frozen
    assert torch.equal(after["network.time_embed.weight"], sinusoidal_embedding(T, 100))


def test_optimizer_is_plain_adam_without_the_time_table():
    ddpm = DDPM(n_steps=T)
    optimizer = make_optimizer(ddpm, 1e-3)
    assert type(optimizer) is torch.optim.Adam
    (group,) = optimizer.param_groups
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (1e-3, (0.9, 0.999), 1e-8, 0)
    assert not any(p is ddpm.network.time_embed.weight for p in group["params"])
    assert sum(p.numel() for p in group["params"]) == 506_852


def test_create_train_state_draws_the_tutorials_weights_from_the_seed():
    torch.manual_seed(5)
    expected = UNet(n_steps=T).state_dict()
    ddpm = DDPM(n_steps=T)
    rng_before = torch.random.get_rng_state()
    state = create_train_state(ddpm, seed=5)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the caller's RNG is untouched
    for (name, a), b in zip(state.ddpm.network.state_dict().items(), expected.values()):
        assert torch.equal(a, b), name


def test_create_train_state_rejects_a_bad_learning_rate():
    with pytest.raises(ValueError, match="learning rate must be positive"):
        create_train_state(DDPM(n_steps=T), learning_rate=0.0)


def test_checkpoint_round_trip_resumes_exactly(tmp_path):
    state = create_train_state(DDPM(n_steps=T), seed=1)
    generator = noise_generator(1)
    for i in range(2):
        train_step(state, batch(seed=i), generator)
    path = save_checkpoint(tmp_path / f"ckpt{CHECKPOINT_SUFFIX}", state, {"epoch": 1, "best_loss": 0.5},
                           generator)
    later = [float(train_step(state, batch(seed=2 + i), generator)) for i in range(2)]

    resumed = create_train_state(DDPM(n_steps=T), seed=99)
    resumed_generator = noise_generator(99)
    resumed, info = restore_train_state(path, resumed, resumed_generator)
    assert info == {"epoch": 1, "best_loss": 0.5} and resumed.step == 2
    again = [float(train_step(resumed, batch(seed=2 + i), resumed_generator)) for i in range(2)]
    assert again == later
    for (name, a), b in zip(resumed.ddpm.state_dict().items(), state.ddpm.state_dict().values()):
        assert torch.equal(a, b), name


def test_load_model_state_accepts_a_checkpoint_or_a_bare_state_dict(tmp_path):
    state = create_train_state(DDPM(n_steps=T), seed=2)
    ours = save_checkpoint(tmp_path / "ours.pt", state, {"epoch": 1, "best_loss": 1.0})
    bare = tmp_path / "tutorial.pt"
    torch.save(state.ddpm.state_dict(), bare)  # what the tutorial's training loop writes
    for path in (ours, bare):
        fresh = DDPM(n_steps=T)
        fresh.load_state_dict(load_model_state(path), strict=True)
        assert torch.equal(fresh.network.conv_out.weight, state.ddpm.network.conv_out.weight)
    assert len(load_model_state(ours)) == 173
    with pytest.raises(ValueError, match="no optimizer state to resume from"):
        restore_train_state(bare, state)


def test_unreadable_checkpoints_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        read_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a readable checkpoint"):
        load_model_state(garbage)
    not_weights = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_weights)
    with pytest.raises(ValueError, match="neither a checkpoint nor a state_dict"):
        load_model_state(not_weights)


def test_train_writes_a_run_and_resumes_like_an_uninterrupted_run(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1), dtype=np.uint8)
    options = dict(batch_size=8, seed=3, progress=False)
    straight = train(DDPM(n_steps=T), images, tmp_path / "straight", epochs=2, **options)
    train(DDPM(n_steps=T), images, tmp_path / "resumed", epochs=1, **options)
    resumed = train(DDPM(n_steps=T), images, tmp_path / "resumed", epochs=2, resume=True, **options)
    assert straight.step == resumed.step == 4
    for (name, a), b in zip(straight.ddpm.state_dict().items(), resumed.ddpm.state_dict().values()):
        assert torch.equal(a, b), name
    run = RunDir(tmp_path / "resumed", CHECKPOINT_SUFFIX)
    assert run.checkpoint("best").is_file() and run.checkpoint("latest").is_file()
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2]


def test_a_few_steps_on_real_digits_lower_the_loss(mnist_dir):
    images, _ = load_dataset("mnist", data_dir=mnist_dir, limit=704)
    x = torch.from_numpy(scale_images(images)).permute(0, 3, 1, 2)
    train_x, eval_x = x[:640], x[640:]
    ddpm = DDPM(n_steps=1000)
    state = create_train_state(ddpm, seed=0)
    g = torch.Generator().manual_seed(1)
    eval_t = torch.randint(0, 1000, (len(eval_x),), generator=g)
    eval_eta = torch.randn(eval_x.shape, generator=g)

    def eval_loss():
        with torch.no_grad():
            return ddpm.loss(eval_x, eval_t, eval_eta).item()

    before = eval_loss()
    generator = noise_generator(0)
    for i in range(20):
        train_step(state, train_x[32 * i: 32 * (i + 1)], generator)
    assert eval_loss() < 0.9 * before
