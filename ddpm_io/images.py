"""Image grids, PNG and GIF writing, and which sampling steps become GIF frames.

Images here are numpy arrays in NHWC layout, any float range; each framework converts
its own tensors to numpy before calling these.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

FORWARD_FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def gif_frame_steps(n_steps: int, n_frames: int) -> np.ndarray:
    """Loop iterations (0 = the step at t = T-1) after which the sampler keeps a frame.

    The tutorial's rule: iteration ``idx`` is kept when it is in
    ``linspace(0, T, n_frames)`` cast to unsigned int, or when it is the last step (t = 0).
    Returns the sorted kept iterations; the last one is always ``n_steps - 1``.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be at least 1, got {n_steps}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    marks = np.linspace(0, n_steps, n_frames).astype(np.uint64)
    kept = set(int(m) for m in marks if m < n_steps) | {n_steps - 1}
    return np.array(sorted(kept), dtype=np.int64)


def forward_timesteps(n_steps: int) -> list[int]:
    """The timesteps of the tutorial's show_forward: t = int(p * T) - 1 for p in 25..100%."""
    return [int(p * n_steps) - 1 for p in FORWARD_FRACTIONS]


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Scales each image on its own to 0..255 (min to 0, max to 255), as uint8.

    A constant image has no contrast to stretch and becomes mid-gray (128), not NaN.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.shape[0] < 1:
        raise ValueError(f"expected images of shape (N, H, W, C) with N >= 1 and C = 1 or 3 "
                         f"(channels last), got {images.shape}")
    if not np.issubdtype(images.dtype, np.floating) and not np.issubdtype(images.dtype, np.integer):
        raise ValueError(f"expected real-valued images, got dtype {images.dtype}")
    images = images.astype(np.float64)
    if not np.all(np.isfinite(images)):
        raise ValueError("images contain NaN or infinite values")
    lo = images.min(axis=(1, 2, 3), keepdims=True)
    span = images.max(axis=(1, 2, 3), keepdims=True) - lo
    flat = span == 0
    scaled = np.where(flat, 0.5, (images - lo) / np.where(flat, 1.0, span)) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, n_cols: int | None = None, padding: int = 2) -> np.ndarray:
    """Tiles N images into one RGB uint8 image of shape (rows*(H+p)+p, cols*(W+p)+p, 3).

    ``n_cols=None`` asks for a square grid and needs N to be a perfect square.
    Each image is scaled on its own with ``to_uint8``.
    """
    if padding < 0 or (n_cols is not None and n_cols < 1):
        raise ValueError(f"need padding >= 0 and n_cols >= 1, got padding={padding}, n_cols={n_cols}")
    tiles = to_uint8(images)
    n, h, w, c = tiles.shape
    if n_cols is None:
        n_cols = math.isqrt(n)
        if n_cols * n_cols != n:
            raise ValueError(f"a square grid needs a perfect square number of images, got {n}")
    n_rows = math.ceil(n / n_cols)
    grid = np.zeros((n_rows * (h + padding) + padding, n_cols * (w + padding) + padding, 3), np.uint8)
    grid[:] = 64  # dark gray lines between the tiles
    for i, tile in enumerate(tiles):
        r, col = divmod(i, n_cols)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y : y + h, x : x + w] = tile  # broadcasts 1 channel to RGB
    return grid


def _atomic_target(path: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    return path, path.with_name(f".{path.name}.tmp{path.suffix}")


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Writes one uint8 RGB (or gray) image as PNG, atomically."""
    import imageio.v3 as iio

    path, tmp = _atomic_target(path)
    iio.imwrite(tmp, np.asarray(image, dtype=np.uint8), extension=".png")
    os.replace(tmp, path)
    return path


def save_grid_png(path: str | os.PathLike, images: np.ndarray, n_cols: int | None = None) -> Path:
    """Tiles images (N, H, W, C) with ``image_grid`` and writes the grid as PNG."""
    return save_png(path, image_grid(images, n_cols=n_cols))


def save_gif(
    path: str | os.PathLike,
    frames: np.ndarray,
    frame_ms: int = 40,
    hold_last_ms: int = 3000,
) -> Path:
    """Writes the sampling process as a looping GIF.

    ``frames`` is (F, N, H, W, C): F moments of N images; each moment becomes one square
    grid. The last frame stays on screen ``hold_last_ms`` milliseconds. It is held through
    its duration, not by repeating it: GIF writers merge identical consecutive frames.
    """
    import imageio.v3 as iio

    frames = np.asarray(frames)
    if frames.ndim != 5 or len(frames) < 1:
        raise ValueError(f"expected frames of shape (F, N, H, W, C) with F >= 1, got {frames.shape}")
    if frame_ms <= 0 or hold_last_ms <= 0:
        raise ValueError("frame durations must be positive milliseconds")
    grids = np.stack([image_grid(f) for f in frames])
    durations = [frame_ms] * (len(grids) - 1) + [hold_last_ms]
    path, tmp = _atomic_target(path)
    iio.imwrite(tmp, grids, extension=".gif", duration=durations, loop=0)
    os.replace(tmp, path)
    return path
