"""DDPM in PyTorch: the tutorial's reference model (nn.Module, tutorial-compatible state_dict)."""

from ddpm_torch.ddpm import DDPM, reverse_step
from ddpm_torch.schedule import Schedule, make_schedule
from ddpm_torch.train import create_train_state, train, train_step
from ddpm_torch.unet import UNet, sinusoidal_embedding

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
