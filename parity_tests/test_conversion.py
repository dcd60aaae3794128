"""Weights between the frameworks: exact round trips, strict loading, clear errors, and
models trained in one framework running identically in the other."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import ddpm_torch
from ddpm_jax.convert import load_torch_checkpoint, params_from_torch, params_to_torch
from ddpm_jax.cli import main as jax_cli
from ddpm_torch.cli import main as torch_cli
from parity_tests.bridge import nchw, nhwc, torch_model_from


def leaves(params):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(params)]


def test_jax_to_torch_to_jax_is_exact(jax_params):
    state = params_to_torch(jax_params)
    assert len(state) == 173 and all(k.startswith("network.") for k in state)
    back = params_from_torch(state)
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(jax_params)
    for a, b in zip(leaves(back), leaves(jax_params)):
        np.testing.assert_array_equal(a, b)


def test_torch_to_jax_to_torch_is_exact():
    torch.manual_seed(0)
    model = ddpm_torch.DDPM(n_steps=1000)  # PyTorch's own initialisation
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    back = params_to_torch(params_from_torch(model.state_dict()))
    assert back.keys() == state.keys()
    for k in state:
        np.testing.assert_array_equal(back[k], state[k], err_msg=k)


def test_export_loads_strictly_and_keeps_the_unused_layer_norm(jax_params):
    model = torch_model_from(jax_params)  # load_state_dict(strict=True) inside
    ln = model.network.b_out[2].ln
    assert torch.equal(ln.weight, torch.ones(10, 28, 28)) and torch.equal(ln.bias, torch.zeros(10, 28, 28))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 506_852  # the tutorial's own count


def test_keys_without_the_network_prefix(jax_params):
    state = {k.removeprefix("network."): v for k, v in params_to_torch(jax_params).items()}
    for a, b in zip(leaves(params_from_torch(state)), leaves(jax_params)):
        np.testing.assert_array_equal(a, b)


def test_bad_state_dicts_name_every_problem(jax_params):
    state = params_to_torch(jax_params)
    del state["network.b2.1.conv1.weight"]
    state["network.b9.0.conv1.weight"] = np.zeros((1,), np.float32)
    state["network.up2.weight"] = state["network.up2.weight"][:, :10]
    with pytest.raises(ValueError) as info:
        params_from_torch(state)
    message = str(info.value)
    assert "missing: b2.1.conv1.weight" in message
    assert "unexpected: b9.0.conv1.weight" in message
    assert "up2.weight: (20, 10, 4, 4), expected (20, 20, 4, 4)" in message
    with pytest.raises(ValueError, match="no time_embed.weight"):
        params_from_torch({"weight": np.zeros(3)})


def unet_outputs(jax_ddpm, params, torch_model, batch):
    """The noise estimates of the same weights on the same batch: (JAX, torch), NHWC."""
    x0, t, _ = batch
    with torch.no_grad():
        from_torch = nhwc(torch_model.backward(nchw(x0), torch.from_numpy(t)))
    return np.asarray(jax_ddpm.backward(params, jnp.asarray(x0), jnp.asarray(t))), from_torch


def test_tutorial_checkpoint_file_runs_the_same_in_jax(trained_both, tmp_path, batch, jax_ddpm, observed):
    """A model trained in torch, saved as the tutorial saves it, sampled from in JAX."""
    _, _, torch_model, _ = trained_both
    path = tmp_path / "ddpm_model.pt"
    torch.save(torch_model.state_dict(), path)  # exactly what the tutorial's training loop does
    got, want = unet_outputs(jax_ddpm, load_torch_checkpoint(path), torch_model, batch)
    observed("unet forward, trained in torch, run in jax (abs)", np.abs(got - want).max())
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_jax_trained_model_runs_the_same_in_torch(trained_both, batch, jax_ddpm, observed):
    params, _, _, _ = trained_both
    want, got = unet_outputs(jax_ddpm, params, torch_model_from(params), batch)
    observed("unet forward, trained in jax, run in torch (abs)", np.abs(got - want).max())
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_unreadable_torch_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no torch checkpoint"):
        load_torch_checkpoint(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        load_torch_checkpoint(tmp_path / "bad.pt")


def test_command_lines_cross_over(tmp_path, mnist_dir):
    """ddpm-torch trains, ddpm-jax samples its checkpoint; ddpm-jax trains and exports,
    ddpm-torch samples the export."""
    data = ["--dataset", "mnist", "--data-dir", str(mnist_dir), "--limit", "64", "--batch-size", "32",
            "--epochs", "1", "--n-steps", "10"]
    sample = ["--n", "4", "--frames", "5"]

    assert torch_cli(["train", *data, "--out", str(tmp_path / "torch_run")]) == 0
    assert jax_cli(["sample", "--torch-checkpoint", str(tmp_path / "torch_run/checkpoints/best.pt"),
                    *sample, "--png", str(tmp_path / "a.png"), "--gif", str(tmp_path / "a.gif")]) == 0
    assert (tmp_path / "a.png").is_file() and (tmp_path / "a.gif").is_file()

    assert jax_cli(["train", *data, "--out", str(tmp_path / "jax_run")]) == 0
    assert jax_cli(["export", "--run", str(tmp_path / "jax_run"),
                    "--torch-checkpoint", str(tmp_path / "exported.pt")]) == 0
    exported = torch.load(tmp_path / "exported.pt", weights_only=True)
    ddpm_torch.DDPM(n_steps=10).load_state_dict(exported, strict=True)
    assert torch_cli(["sample", "--torch-checkpoint", str(tmp_path / "exported.pt"), *sample,
                      "--png", str(tmp_path / "b.png"), "--gif", str(tmp_path / "b.gif")]) == 0
    assert (tmp_path / "b.png").is_file() and (tmp_path / "b.gif").is_file()
