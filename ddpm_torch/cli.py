"""``ddpm-torch``: the command line of the PyTorch implementation (logic lives in ddpm_io.cli)."""

from __future__ import annotations

import sys

import numpy as np
import torch

from ddpm_io import cli
from ddpm_io.progress import StepProgress
from ddpm_io.runs import ModelConfig, RunDir
from ddpm_torch.ddpm import DDPM
from ddpm_torch.train import CHECKPOINT_SUFFIX, load_model_state, train


def _to_nchw(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(0, 3, 1, 2).to(device)


def _to_nhwc(x: torch.Tensor) -> np.ndarray:
    return x.movedim(-3, -1).cpu().numpy()  # (..., C, H, W) -> (..., H, W, C)


class TorchBackend:
    name = "torch"
    checkpoint_suffix = CHECKPOINT_SUFFIX

    def __init__(self, device: torch.device | str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def train(self, config, images, run_dir, *, epochs, batch_size, learning_rate, seed, resume):
        train(DDPM.from_config(config, self.device), images, run_dir, epochs=epochs,
              batch_size=batch_size, learning_rate=learning_rate, seed=seed, resume=resume)

    def load(self, run: RunDir | None, args):
        if run is None:
            raise ValueError("ddpm-torch samples from a run directory: pass --run RUN_DIR")
        config, _ = run.read_config()
        ddpm = DDPM.from_config(config, self.device)
        ddpm.load_state_dict(load_model_state(run.checkpoint("best")))
        return ddpm

    def sample(self, model, n, n_frames, sigma, seed):
        ddpm: DDPM = model
        generator = torch.Generator(ddpm.device).manual_seed(seed)
        x0, frames = ddpm.sample(n, n_frames, sigma, generator=generator,
                                 progress=StepProgress(ddpm.n_steps))
        return _to_nhwc(x0), _to_nhwc(frames)

    def noise(self, config: ModelConfig, x0, t, seed):
        ddpm = DDPM.from_config(config, self.device)
        x0 = _to_nchw(x0, self.device)
        eta = torch.randn(x0.shape, generator=torch.Generator(self.device).manual_seed(seed),
                          device=self.device)
        return _to_nhwc(ddpm.forward(x0, torch.from_numpy(t).to(self.device), eta))


def main(argv=None) -> int:
    return cli.main(TorchBackend(), "ddpm-torch", "PyTorch", argv)


if __name__ == "__main__":
    sys.exit(main())
