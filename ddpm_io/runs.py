"""A training run's directory: its model config, metrics, plots and checkpoint paths.

Layout of RUN_DIR (the same for both frameworks; only the checkpoint format differs):
    config.json            model config + what produced the run (enough to sample)
    metrics.jsonl          one JSON object per finished epoch
    loss.png               mean loss per epoch
    checkpoints/best.*     the epoch with the lowest mean loss (the tutorial's rule)
    checkpoints/latest.*   the last finished (or interrupted) epoch, to resume from
    samples.png            a 10x10 grid sampled from the best checkpoint
    sampling.gif           the reverse process of those samples
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from ddpm_io.checks import check_schedule


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the model: the DDPM schedule and the UNet size."""

    n_steps: int = 1000
    min_beta: float = 1e-4
    max_beta: float = 0.02
    time_emb_dim: int = 100
    image_shape: tuple[int, int, int] = (28, 28, 1)  # H, W, C

    def __post_init__(self):
        check_schedule(self.n_steps, self.min_beta, self.max_beta)
        if tuple(self.image_shape) != (28, 28, 1):
            raise ValueError(f"this UNet is built for 28x28x1 images, got {self.image_shape}")
        if self.time_emb_dim < 2 or self.time_emb_dim % 2:
            raise ValueError(f"time_emb_dim must be even and positive, got {self.time_emb_dim}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown model config entries: {sorted(unknown)}")
        data = dict(data)
        if "image_shape" in data:
            data["image_shape"] = tuple(data["image_shape"])
        return cls(**data)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` through a temporary file, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


class RunDir:
    """Paths inside one run directory; ``suffix`` is the framework's checkpoint extension."""

    def __init__(self, path: str | os.PathLike, suffix: str):
        self.path = Path(path)
        self.suffix = suffix

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def loss_plot(self) -> Path:
        return self.path / "loss.png"

    @property
    def samples(self) -> Path:
        return self.path / "samples.png"

    @property
    def gif(self) -> Path:
        return self.path / "sampling.gif"

    def checkpoint(self, name: str) -> Path:
        return self.path / "checkpoints" / f"{name}{self.suffix}"

    def has_checkpoint(self) -> bool:
        """True when any framework has saved weights here (a run of ddpm-jax or ddpm-torch)."""
        folder = self.path / "checkpoints"
        return folder.is_dir() and any(p.name.startswith(("best.", "latest.")) for p in folder.iterdir())

    def check_can_start(self, resume: bool) -> None:
        """Refuses to start training over weights someone trained (any framework), unless resuming."""
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"{self.path} is a file, not a run directory")
        if not resume and self.has_checkpoint():
            raise FileExistsError(
                f"{self.path} already holds a trained run; pass --resume (resume=True) to "
                "continue it, or choose another directory (nothing was overwritten)")
        if resume and not self.checkpoint("latest").exists():
            raise FileNotFoundError(f"cannot resume: no {self.checkpoint('latest')}")

    def write_config(self, config: ModelConfig, **info) -> None:
        record = {"model": config.to_dict(), **info}
        atomic_write_bytes(self.config, (json.dumps(record, indent=2) + "\n").encode())

    def read_config(self) -> tuple[ModelConfig, dict]:
        if not self.config.is_file():
            raise FileNotFoundError(f"{self.path} is not a run directory: no {self.config.name}")
        record = json.loads(self.config.read_text())
        return ModelConfig.from_dict(record.pop("model")), record

    def read_metrics(self) -> list[dict]:
        if not self.metrics.is_file():
            return []
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line.strip()]

    def append_metrics(self, record: dict) -> None:
        self.metrics.parent.mkdir(parents=True, exist_ok=True)
        with open(self.metrics, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
