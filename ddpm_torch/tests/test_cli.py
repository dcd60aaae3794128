import json

import imageio.v3 as iio
import pytest

from ddpm_torch.cli import main


def test_train_sample_forward_end_to_end(tmp_path, mnist_dir, capsys):
    run = tmp_path / "run"
    data = ["--dataset", "mnist", "--data-dir", str(mnist_dir)]
    assert main(["train", *data, "--limit", "64", "--batch-size", "32", "--epochs", "1",
                 "--n-steps", "10", "--out", str(run)]) == 0
    for name in ("config.json", "metrics.jsonl", "loss.png", "samples.png", "sampling.gif",
                 "checkpoints/best.pt", "checkpoints/latest.pt"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["framework"] == "torch" and config["model"]["n_steps"] == 10

    png, gif = tmp_path / "s.png", tmp_path / "s.gif"
    assert main(["sample", "--run", str(run), "--n", "4", "--frames", "5",
                 "--png", str(png), "--gif", str(gif)]) == 0
    assert png.is_file()
    frames = iio.imread(gif, index=None)
    assert frames.ndim == 4 and len(frames) > 1

    forward_png = tmp_path / "forward.png"
    assert main(["forward", *data, "--limit", "8", "--n", "4", "--n-steps", "10",
                 "--png", str(forward_png)]) == 0
    assert iio.imread(forward_png).shape[:2] == (5 * 30 + 2, 4 * 30 + 2)  # 5 rows of 4 tiles

    # A second train into the same directory refuses to overwrite it.
    assert main(["train", *data, "--limit", "64", "--batch-size", "32", "--epochs", "1",
                 "--n-steps", "10", "--out", str(run)]) == 2
    assert "already holds a trained run" in capsys.readouterr().err


def test_sample_errors_are_one_line_messages(tmp_path, capsys):
    assert main(["sample", "--run", str(tmp_path / "nowhere")]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one of --run and --torch-checkpoint is required
        main(["sample", "--png", str(tmp_path / "a.png"), "--gif", str(tmp_path / "a.gif")])
    assert "--run --torch-checkpoint is required" in capsys.readouterr().err
