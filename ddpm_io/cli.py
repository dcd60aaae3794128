"""The command line shared by ``ddpm-jax`` and ``ddpm-torch``.

Both programs take the same subcommands and options; each framework's ``cli`` module
supplies a backend (how to train, load, sample, noise and export) and calls ``main``.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from ddpm_io.datasets import DATASETS, DatasetError, load_dataset, scale_images
from ddpm_io.images import forward_timesteps, image_grid, save_gif, save_grid_png, save_png
from ddpm_io.runs import ModelConfig, RunDir
from ddpm_io.training import TrainingDiverged

SAMPLES_AFTER_TRAINING = 100  # a 10x10 grid


class Backend(Protocol):
    """What a framework provides to the command line."""

    name: str  # "jax" or "torch"
    checkpoint_suffix: str

    def train(self, config: ModelConfig, images: np.ndarray, run_dir: Path, *, epochs: int,
              batch_size: int, learning_rate: float, seed: int, resume: bool) -> None: ...

    def load(self, run: RunDir | None, torch_checkpoint: Path | None = None):
        """The model and weights to sample from: ``torch_checkpoint`` when given (a tutorial
        state_dict or a ddpm-torch checkpoint), else the best checkpoint of ``run``."""

    def sample(self, model, n: int, n_frames: int, sigma: str, seed: int):
        """(x0 (n, 28, 28, 1), frames (F, n, 28, 28, 1)) as numpy arrays."""

    def noise(self, config: ModelConfig, x0: np.ndarray, t: np.ndarray, seed: int) -> np.ndarray:
        """Forward noising of float images in [-1, 1] (NHWC numpy) at timesteps t."""

    def export(self, run: RunDir, path: Path) -> None:
        """Writes the run's best weights as the tutorial's state_dict at ``path``."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _square_int(text: str) -> int:
    value = _positive_int(text)
    if math.isqrt(value) ** 2 != value:
        raise argparse.ArgumentTypeError(f"must be a perfect square (for a square grid), got {value}")
    return value


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=DATASETS, help="which dataset to use")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="directory holding the dataset's IDX .gz files (train-images-idx3-ubyte.gz, "
                        "...), read as --dataset; without it: a tensorflow-datasets copy, "
                        "Debian's Fashion-MNIST, then a download")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="use only the first N images (quick runs)")


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**32 - 1, got {value}")
    return value


# Options recorded in config.json by `train`; on --resume they come from there, and
# giving a different value is an error (the run would no longer be what its record says).
RESUMED_OPTIONS = {"dataset": None, "data_dir": None, "limit": None, "batch_size": 128,
                   "lr": 1e-3, "n_steps": 1000, "seed": 0}


def build_parser(prog: str, framework: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=f"DDPM on MNIST / Fashion-MNIST with {framework}: train, "
                               "sample, show the forward process.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a DDPM and write checkpoints, metrics, samples and a GIF",
                       description="Train the tutorial's DDPM. RUN_DIR receives config.json, "
                                   "checkpoints/{best,latest}, metrics.jsonl, loss.png, "
                                   "samples.png (10x10, from the best epoch) and sampling.gif.")
    _add_data_options(p)
    p.add_argument("--epochs", type=_positive_int, default=20, help="epochs in all (default 20)")
    # Defaults of the recorded options are filled in by run_train (None = not given).
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="images per step (default 128); the last short batch of an epoch is dropped")
    p.add_argument("--lr", type=_positive_float, default=None, help="Adam learning rate (default 1e-3)")
    p.add_argument("--n-steps", type=_positive_int, default=None,
                   help="diffusion steps T (default 1000)")
    p.add_argument("--seed", type=_seed, default=None,
                   help="seed for weights, batches and noise (default 0)")
    p.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run directory to write")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in RUN_DIR from its latest checkpoint up to --epochs "
                        "(an interrupted epoch starts again); data and training options are "
                        "those recorded in RUN_DIR/config.json")

    p = sub.add_parser("sample", help="sample images and a GIF of the reverse process from a run",
                       description="Sample from the best checkpoint of a trained run (--run) or "
                                   "from a PyTorch checkpoint (--torch-checkpoint): one of the two.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, metavar="RUN_DIR", help="run directory written by train")
    source.add_argument("--torch-checkpoint", type=Path, metavar="FILE.pt",
                   help="sample from a PyTorch checkpoint instead of a run: the tutorial's saved "
                        "state_dict or a ddpm-torch checkpoint (then give --png and --gif)")
    p.add_argument("--n", type=_square_int, default=100,
                   help="number of images, a perfect square (default 100)")
    p.add_argument("--frames", type=_positive_int, default=100,
                   help="GIF frames taken along the reverse process (default 100)")
    p.add_argument("--sigma", choices=("beta", "posterior"), default="beta",
                   help="reverse-process noise: sigma_t^2 = beta_t (default) or the posterior variance")
    p.add_argument("--seed", type=_seed, default=0, help="sampling seed (default 0)")
    p.add_argument("--png", type=Path, default=None,
                   help="grid of samples (default RUN_DIR/sample-nN-SIGMA-seedS.png, which never "
                        "replaces the samples.png that train wrote)")
    p.add_argument("--gif", type=Path, default=None,
                   help="GIF of the reverse process (default RUN_DIR/sample-nN-SIGMA-seedS.gif)")

    p = sub.add_parser("forward", help="show real images noised at 25/50/75/100%% of T",
                       description="Rows: the real images, then the same images noised at "
                                   "t = int(p*T) - 1 for p = 25, 50, 75, 100 percent.")
    _add_data_options(p)
    p.add_argument("--n", type=_positive_int, default=8, help="number of images (default 8)")
    p.add_argument("--n-steps", type=_positive_int, default=1000,
                   help="diffusion steps T, at least 4 (default 1000)")
    p.add_argument("--seed", type=_seed, default=0, help="noise seed (default 0)")
    p.add_argument("--png", type=Path, required=True, help="where to write the PNG")

    p = sub.add_parser("export", help="write a run's best weights as the tutorial's PyTorch checkpoint",
                       description="Write the best checkpoint of RUN_DIR as the tutorial's DDPM "
                                   "state_dict (173 entries), loadable with "
                                   "load_state_dict(strict=True) by ddpm_torch or the tutorial's code.")
    p.add_argument("--run", type=Path, required=True, metavar="RUN_DIR", help="run directory")
    p.add_argument("--torch-checkpoint", type=Path, required=True, metavar="FILE.pt",
                   help="the .pt file to write")
    return parser


def write_samples(x0: np.ndarray, frames: np.ndarray, png: Path, gif: Path) -> None:
    save_grid_png(png, x0)
    save_gif(gif, frames)
    print(f"wrote {png} and {gif} ({len(frames)} frames)")


def check_output_file(path: Path) -> None:
    """Fails before any work when ``path`` cannot be a file we write."""
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give a file path")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"cannot write {path}: {parent} is not a directory")
            break


def check_run_framework(run: RunDir, record: dict, backend: Backend) -> None:
    trained_with = record.get("framework", backend.name)
    if trained_with != backend.name:
        raise ValueError(f"{run.path} was trained with ddpm-{trained_with}; use ddpm-{trained_with}, "
                         f"or its export command and then --torch-checkpoint")


def resolve_train_options(args, run: RunDir, backend: Backend) -> ModelConfig:
    """Fills in the recorded options: from config.json when resuming, else the defaults."""
    if not args.resume:
        for name, default in RESUMED_OPTIONS.items():
            if getattr(args, name) is None:
                setattr(args, name, default)
        return ModelConfig(n_steps=args.n_steps)
    config, record = run.read_config()
    check_run_framework(run, record, backend)
    recorded = {**record, "n_steps": config.n_steps}
    conflicts = []
    for name, default in RESUMED_OPTIONS.items():
        value = str(getattr(args, name)) if isinstance(getattr(args, name), Path) else getattr(args, name)
        kept = recorded.get(name, default)
        if value is not None and value != kept:
            conflicts.append(f"--{name.replace('_', '-')} {value} (the run has {kept})")
        setattr(args, name, kept)
    if conflicts:
        raise ValueError("--resume continues the run as recorded in its config.json; these options "
                         "differ: " + ", ".join(conflicts))
    return config


def run_train(args, backend: Backend) -> None:
    run = RunDir(args.out, backend.checkpoint_suffix)
    config = resolve_train_options(args, run, backend)
    run.check_can_start(args.resume)
    if not args.resume and run.config.is_file():  # a run that crashed before its first epoch
        check_run_framework(run, run.read_config()[1], backend)
    images, _ = load_dataset(args.dataset, data_dir=args.data_dir, limit=args.limit)
    if len(images) < args.batch_size:
        raise ValueError(f"{len(images)} images are fewer than one batch of --batch-size "
                         f"{args.batch_size}; lower --batch-size or raise --limit")
    if not args.resume:
        run.write_config(config, framework=backend.name, dataset=args.dataset,
                         data_dir=None if args.data_dir is None else str(args.data_dir),
                         limit=args.limit, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         n_images=len(images))
    print(f"training on {len(images)} {args.dataset} images for {args.epochs} epochs -> {run.path}")
    backend.train(config, images, run.path, epochs=args.epochs, batch_size=args.batch_size,
                  learning_rate=args.lr, seed=args.seed, resume=args.resume)
    x0, frames = backend.sample(backend.load(run), SAMPLES_AFTER_TRAINING, 100, "beta", args.seed)
    write_samples(x0, frames, run.samples, run.gif)


def run_sample(args, backend: Backend) -> None:
    run = RunDir(args.run, backend.checkpoint_suffix) if args.run is not None else None
    if run is None and (args.png is None or args.gif is None):
        raise ValueError("with --torch-checkpoint, give both --png and --gif")
    if run is not None:
        check_run_framework(run, run.read_config()[1], backend)
    default = None if run is None else run.path / f"sample-n{args.n}-{args.sigma}-seed{args.seed}"
    png, gif = args.png or default.with_suffix(".png"), args.gif or default.with_suffix(".gif")
    check_output_file(png)
    check_output_file(gif)
    model = backend.load(run, args.torch_checkpoint)
    x0, frames = backend.sample(model, args.n, args.frames, args.sigma, args.seed)
    write_samples(x0, frames, png, gif)


def run_forward(args, backend: Backend) -> None:
    if args.n_steps < 4:
        raise ValueError(f"forward shows t = int(p*T) - 1 for p = 25%..100%: it needs --n-steps of "
                         f"at least 4, got {args.n_steps}")
    check_output_file(args.png)
    config = ModelConfig(n_steps=args.n_steps)
    images, _ = load_dataset(args.dataset, data_dir=args.data_dir, limit=args.limit)
    x0 = scale_images(images[: args.n])
    n = len(x0)
    rows = [x0]
    for t in forward_timesteps(config.n_steps):
        rows.append(backend.noise(config, x0, np.full((n,), t, np.int64), args.seed))
    save_png(args.png, image_grid(np.concatenate(rows), n_cols=n))
    print(f"wrote {args.png}: rows are the originals, then t = "
          + ", ".join(map(str, forward_timesteps(config.n_steps))))


def run_export(args, backend: Backend) -> None:
    run = RunDir(args.run, backend.checkpoint_suffix)
    check_run_framework(run, run.read_config()[1], backend)
    check_output_file(args.torch_checkpoint)
    backend.export(run, args.torch_checkpoint)
    print(f"wrote {args.torch_checkpoint}: the tutorial's state_dict, for "
          "DDPM().load_state_dict(torch.load(path), strict=True)")


COMMANDS = {"train": run_train, "sample": run_sample, "forward": run_forward, "export": run_export}


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(backend: Backend, prog: str, framework: str, argv: Sequence[str] | None = None) -> int:
    """Parses ``argv`` and runs the command; user errors print one line and exit 2."""
    args = build_parser(prog, framework).parse_args(argv)
    # A scheduler's or `kill`'s SIGTERM stops a run like Ctrl-C does: weights saved first.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        COMMANDS[args.command](args, backend)
    except (DatasetError, ValueError, OSError) as e:  # OSError: missing, existing, unwritable files
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
