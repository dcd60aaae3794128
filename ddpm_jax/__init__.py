"""DDPM in JAX/Flax: functional model (params are a pytree), jitted training, scanned sampling."""

from ddpm_jax.ddpm import DDPM, reverse_step
from ddpm_jax.schedule import Schedule, make_schedule
from ddpm_jax.train import create_train_state, train, train_step
from ddpm_jax.unet import UNet, sinusoidal_embedding

__all__ = [
    "DDPM",
    "Schedule",
    "UNet",
    "create_train_state",
    "make_schedule",
    "reverse_step",
    "sinusoidal_embedding",
    "train",
    "train_step",
]
