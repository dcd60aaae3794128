import json

import numpy as np
import pytest
from PIL import Image

from ddpm_io.images import (forward_timesteps, gif_frame_steps, image_grid, save_gif, save_grid_png,
                            to_uint8)
from ddpm_io.runs import ModelConfig, RunDir


def tutorial_frame_rule(n_steps, n_frames):
    """The tutorial's loop, literally: keep idx when in the uint linspace or t == 0."""
    frame_idxs = np.linspace(0, n_steps, n_frames).astype(np.uint)
    return [idx for idx, t in enumerate(range(n_steps)[::-1]) if idx in frame_idxs or t == 0]


@pytest.mark.parametrize("n_steps, n_frames", [(1000, 100), (10, 5), (50, 100), (7, 1), (1, 3)])
def test_gif_frame_steps_follow_the_tutorial(n_steps, n_frames):
    assert gif_frame_steps(n_steps, n_frames).tolist() == tutorial_frame_rule(n_steps, n_frames)


def test_hundred_frames_for_the_default_run():
    steps = gif_frame_steps(1000, 100)
    assert len(steps) == 100 and steps[0] == 0 and steps[-1] == 999


def test_forward_timesteps():
    assert forward_timesteps(1000) == [249, 499, 749, 999]


def test_to_uint8_per_image_and_constant_images():
    images = np.stack([np.linspace(-3, 5, 784).reshape(28, 28, 1), np.full((28, 28, 1), 0.7)])
    out = to_uint8(images)
    assert out.dtype == np.uint8
    assert out[0].min() == 0 and out[0].max() == 255
    assert np.all(out[1] == 128)  # no contrast: mid-gray, not NaN or 0/0 garbage


def test_to_uint8_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        to_uint8(np.full((1, 2, 2, 1), np.nan))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        to_uint8(np.zeros((28, 28)))


def test_grid_layout():
    grid = image_grid(np.random.default_rng(0).normal(size=(16, 28, 28, 1)), padding=2)
    assert grid.shape == (4 * 30 + 2, 4 * 30 + 2, 3) and grid.dtype == np.uint8
    with pytest.raises(ValueError, match="perfect square"):
        image_grid(np.zeros((5, 28, 28, 1)))
    assert image_grid(np.zeros((5, 28, 28, 1)), n_cols=5).shape == (32, 152, 3)


def test_gif_durations_and_held_last_frame(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(6, 4, 28, 28, 1))
    frames[-2] = frames[-1]  # identical frames must not swallow the hold
    path = save_gif(tmp_path / "s.gif", frames, frame_ms=40, hold_last_ms=3000)
    with Image.open(path) as gif:
        durations, modes = [], set()
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
            modes.add(gif.convert("RGB").size)
    assert len(durations) > 1 and all(d > 0 for d in durations)
    assert sum(durations) >= 3000 and durations[-1] >= 3000 - 40


def test_png_grid_is_rgb(tmp_path):
    path = save_grid_png(tmp_path / "g.png", np.random.default_rng(0).normal(size=(4, 28, 28, 1)))
    with Image.open(path) as png:
        assert png.mode == "RGB" and png.size == (62, 62)


def test_model_config_validation_and_round_trip(tmp_path):
    run = RunDir(tmp_path, ".x")
    run.write_config(ModelConfig(n_steps=10), dataset="mnist")
    config, info = run.read_config()
    assert config == ModelConfig(n_steps=10) and info == {"dataset": "mnist"}
    assert json.loads(run.config.read_text())["model"]["image_shape"] == [28, 28, 1]
    for bad in [dict(n_steps=0), dict(min_beta=0.5, max_beta=0.1), dict(image_shape=(32, 32, 1))]:
        with pytest.raises(ValueError):
            ModelConfig(**bad)
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        RunDir(tmp_path / "none", ".x").read_config()


def test_a_run_of_either_framework_is_never_trained_over(tmp_path):
    jax_run = RunDir(tmp_path, ".msgpack")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.msgpack").write_bytes(b"weights")
    torch_view = RunDir(tmp_path, ".pt")
    for run in (jax_run, torch_view):
        with pytest.raises(FileExistsError, match="already holds a trained run"):
            run.check_can_start(resume=False)
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        torch_view.check_can_start(resume=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="is a file"):
        RunDir(tmp_path / "file", ".pt").check_can_start(resume=False)
