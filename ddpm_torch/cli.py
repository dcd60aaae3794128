"""``ddpm-torch``: the command line of the PyTorch implementation (logic lives in ddpm_io.cli)."""

from __future__ import annotations

import io
import sys

import numpy as np
import torch

from ddpm_io import cli
from ddpm_io.progress import StepProgress
from ddpm_io.runs import ModelConfig, RunDir, atomic_write_bytes
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

    def load(self, run: RunDir | None, torch_checkpoint=None):
        if torch_checkpoint is not None:
            state_dict = load_model_state(torch_checkpoint)
            if not any(k.startswith("network.") for k in state_dict):  # a bare UNet's state_dict
                state_dict = {f"network.{k}": v for k, v in state_dict.items()}
            # The tutorial stores no schedule: its betas (1e-4 .. 0.02) are assumed, and T
            # is the length of the checkpoint's time table.
            n_steps, dim = state_dict.get("network.time_embed.weight", torch.empty(0, 0)).shape
            config = ModelConfig(n_steps=n_steps or 1000, time_emb_dim=dim or 100)
        else:
            config, _ = run.read_config()
            state_dict = load_model_state(run.checkpoint("best"))
        ddpm = DDPM.from_config(config, self.device)
        try:
            ddpm.load_state_dict(state_dict, strict=True)
        except RuntimeError as e:  # names the missing, unexpected and misshapen entries
            raise ValueError(f"the checkpoint does not fit the tutorial's DDPM: {e}") from e
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


    def export(self, run: RunDir, path):
        buffer = io.BytesIO()
        torch.save(load_model_state(run.checkpoint("best")), buffer)
        atomic_write_bytes(path, buffer.getvalue())


def main(argv=None) -> int:
    return cli.main(TorchBackend(), "ddpm-torch", "PyTorch", argv)


if __name__ == "__main__":
    sys.exit(main())
