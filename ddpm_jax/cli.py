"""``ddpm-jax``: the command line of the Flax implementation (logic lives in ddpm_io.cli)."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np

from ddpm_io import cli
from ddpm_io.progress import StepProgress
from ddpm_io.runs import ModelConfig, RunDir
from ddpm_jax.convert import load_torch_checkpoint, save_torch_checkpoint
from ddpm_jax.ddpm import DDPM
from ddpm_jax.train import CHECKPOINT_SUFFIX, load_params, train


class JaxBackend:
    name = "jax"
    checkpoint_suffix = CHECKPOINT_SUFFIX

    def train(self, config, images, run_dir, *, epochs, batch_size, learning_rate, seed, resume):
        train(DDPM.from_config(config), images, run_dir, epochs=epochs, batch_size=batch_size,
              learning_rate=learning_rate, seed=seed, resume=resume)

    def load(self, run: RunDir | None, torch_checkpoint=None):
        if torch_checkpoint is not None:
            # The tutorial stores no schedule: its betas (1e-4 .. 0.02) are assumed, and T
            # is the length of the checkpoint's time table.
            params = load_torch_checkpoint(torch_checkpoint)
            n_steps, dim = params["time_embed"]["embedding"].shape
            return DDPM.from_config(ModelConfig(n_steps=n_steps, time_emb_dim=dim)), params
        config, _ = run.read_config()
        return DDPM.from_config(config), load_params(run.checkpoint("best"))

    def sample(self, model, n, n_frames, sigma, seed):
        ddpm, params = model
        x0, frames = ddpm.sample(params, jax.random.key(seed), n_samples=n, n_frames=n_frames,
                                 sigma=sigma, progress=StepProgress(ddpm.n_steps))
        return np.asarray(x0), np.asarray(frames)

    def noise(self, config: ModelConfig, x0, t, seed):
        eta = jax.random.normal(jax.random.key(seed), x0.shape, jnp.float32)
        return np.asarray(DDPM.from_config(config).forward(jnp.asarray(x0), jnp.asarray(t), eta))

    def export(self, run: RunDir, path):
        save_torch_checkpoint(path, load_params(run.checkpoint("best")))


def main(argv=None) -> int:
    return cli.main(JaxBackend(), "ddpm-jax", "JAX/Flax", argv)


if __name__ == "__main__":
    sys.exit(main())
