import json

import pytest
from PIL import Image

from ddpm_jax.cli import main


def gif_durations(path):
    with Image.open(path) as gif:
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
    return durations


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, mnist_dir):
    run = tmp_path_factory.mktemp("run")
    code = main(["train", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--limit", "96",
                 "--batch-size", "32", "--epochs", "2", "--n-steps", "10", "--out", str(run)])
    assert code == 0
    return run


def test_train_writes_everything(trained_run):
    for name in ["config.json", "metrics.jsonl", "loss.png", "samples.png", "sampling.gif",
                 "checkpoints/best.msgpack", "checkpoints/latest.msgpack"]:
        assert (trained_run / name).is_file(), name
    records = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all(r["steps"] == 3 for r in records)
    config = json.loads((trained_run / "config.json").read_text())
    assert config["model"]["n_steps"] == 10 and config["framework"] == "jax"
    with Image.open(trained_run / "samples.png") as png:
        assert png.size == (10 * 30 + 2, 10 * 30 + 2)  # 10x10 grid of 28px tiles, 2px lines
    durations = gif_durations(trained_run / "sampling.gif")
    assert len(durations) == 10 and all(d > 0 for d in durations) and durations[-1] > durations[0]


def test_sample_from_a_run(trained_run, tmp_path):
    code = main(["sample", "--run", str(trained_run), "--n", "4", "--frames", "5", "--sigma",
                 "posterior", "--png", str(tmp_path / "s.png"), "--gif", str(tmp_path / "s.gif")])
    assert code == 0
    assert len(gif_durations(tmp_path / "s.gif")) == 5
    with Image.open(tmp_path / "s.png") as png:
        assert png.size == (62, 62)


def test_sample_defaults_never_replace_the_training_samples(trained_run):
    before = (trained_run / "samples.png").read_bytes()
    assert main(["sample", "--run", str(trained_run), "--n", "4", "--frames", "5"]) == 0
    assert (trained_run / "sample-n4-beta-seed0.png").is_file()
    assert (trained_run / "sample-n4-beta-seed0.gif").is_file()
    assert (trained_run / "samples.png").read_bytes() == before


def test_refuses_to_overwrite_a_run_and_resumes_it(trained_run, mnist_dir, capsys):
    best = (trained_run / "checkpoints" / "best.msgpack").read_bytes()
    args = ["train", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--limit", "96",
            "--batch-size", "32", "--n-steps", "10", "--out", str(trained_run)]
    assert main(args + ["--epochs", "2"]) == 2
    assert "already holds a trained run" in capsys.readouterr().err
    assert (trained_run / "checkpoints" / "best.msgpack").read_bytes() == best
    assert main(args + ["--epochs", "3", "--resume", "--lr", "0.01"]) == 2
    assert "--lr 0.01 (the run has 0.001)" in capsys.readouterr().err
    assert main(args + ["--epochs", "3", "--resume"]) == 0
    epochs = [json.loads(l)["epoch"] for l in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_forward_figure(mnist_dir, tmp_path):
    code = main(["forward", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--n", "6",
                 "--png", str(tmp_path / "f.png")])
    assert code == 0
    with Image.open(tmp_path / "f.png") as png:
        assert png.size == (6 * 30 + 2, 5 * 30 + 2)  # originals + 4 noise levels


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--dataset", "mnist", "--data-dir", "/nonexistent", "--out", "{tmp}/r"], "does not exist"),
        (["train", "--dataset", "mnist", "--data-dir", "{mnist}", "--limit", "10", "--out", "{tmp}/r"],
         "fewer than one batch"),
        (["sample", "--run", "{tmp}/nothing", "--png", "{tmp}/a.png", "--gif", "{tmp}/a.gif"],
         "not a run directory"),
        (["sample", "--torch-checkpoint", "{tmp}/a.pt", "--png", "{tmp}/a.png"], "give both --png and --gif"),
        (["sample", "--torch-checkpoint", "{tmp}/a.pt", "--png", "{tmp}/a.png", "--gif", "{tmp}/a.gif"],
         "no torch checkpoint at"),
        (["train", "--dataset", "mnist", "--data-dir", "{mnist}", "--out", "{tmp}/r", "--resume"],
         "not a run directory"),
    ],
    ids=["missing-data-dir", "too-few-images", "missing-run", "no-outputs",
         "missing-torch-checkpoint", "resume-nothing"],
)
def test_user_errors_are_one_line(argv, message, tmp_path, mnist_dir, capsys):
    argv = [a.format(tmp=tmp_path, mnist=mnist_dir) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--dataset", "cifar10", "--out", "x"], "invalid choice: 'cifar10'"),
        (["sample", "--run", "x", "--n", "5"], "perfect square"),
        (["train", "--dataset", "mnist", "--out", "x", "--lr", "-1"], "positive number"),
        (["train", "--dataset", "mnist", "--out", "x", "--epochs", "0"], "positive integer"),
        (["train", "--dataset", "mnist", "--out", "x", "--seed", str(2**40)], "2**32"),
        (["sample", "--png", "a.png"], "one of the arguments --run --torch-checkpoint is required"),
        (["sample", "--run", "x", "--torch-checkpoint", "y.pt"], "not allowed with argument"),
    ],
    ids=["unknown-dataset", "non-square", "negative-lr", "zero-epochs", "huge-seed", "no-source",
         "two-sources"],
)
def test_bad_options_are_rejected_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for option in ["--dataset", "--data-dir", "--epochs", "--batch-size", "--lr", "--n-steps",
                   "--limit", "--seed", "--out", "--resume"]:
        assert option in text
