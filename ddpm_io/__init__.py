"""Framework-free pieces shared by ddpm_jax and ddpm_torch: data, images, runs, the epoch loop.

Nothing here imports JAX or PyTorch.
"""

from ddpm_io.datasets import DATASETS, DatasetError, load_dataset, scale_images
from ddpm_io.images import forward_timesteps, gif_frame_steps, image_grid, save_gif, save_grid_png, to_uint8
from ddpm_io.runs import ModelConfig, RunDir

__all__ = [
    "DATASETS",
    "DatasetError",
    "ModelConfig",
    "RunDir",
    "forward_timesteps",
    "gif_frame_steps",
    "image_grid",
    "load_dataset",
    "save_gif",
    "save_grid_png",
    "scale_images",
    "to_uint8",
]
