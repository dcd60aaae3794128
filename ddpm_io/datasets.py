"""MNIST and Fashion-MNIST as in-memory uint8 arrays, from local files first.

Sources, tried in order (the first one that has the data wins):
1. ``data_dir``: a directory holding the standard IDX files
   (``train-images-idx3-ubyte.gz`` ...). When given, it is the only source.
2. A copy already prepared by tensorflow-datasets (ArrayRecord format).
3. ``fashion_mnist`` only: Debian's ``dataset-fashion-mnist`` install location.
4. A download of the IDX files through tensorflow-datasets' download manager
   (no TensorFlow needed), after a quick reachability check so that a machine
   with no network fails in seconds instead of minutes of DNS retries.
"""

from __future__ import annotations

import gzip
import os
import socket
import struct
import threading
import urllib.parse
from pathlib import Path

import numpy as np

DATASETS = ("mnist", "fashion_mnist")
SPLITS = ("train", "test")
IMAGE_SHAPE = (28, 28, 1)

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IMAGES_MAGIC = 2051  # IDX: unsigned byte, 3 dimensions
_LABELS_MAGIC = 2049  # IDX: unsigned byte, 1 dimension


class DatasetError(Exception):
    """The requested data could not be found or read; the message says why and where."""


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Loads a whole split into memory.

    Returns ``(images, labels)``: images uint8 of shape (N, 28, 28, 1), labels int64 (N,).
    ``limit`` keeps the first ``limit`` examples. ``download=False`` never touches the
    network: with no local copy it raises ``DatasetError`` at once.
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise DatasetError(f"limit must be a positive number of images, got {limit}")

    if data_dir is not None:
        images, labels = read_idx_split(Path(data_dir), split)
    else:
        images, labels = _load_without_data_dir(name, split, download)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def read_idx_split(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads the IDX image and label files of one split from ``directory``."""
    if not directory.is_dir():
        raise DatasetError(f"data directory {directory} does not exist")
    images_name, labels_name = _IDX_FILES[split]
    images = read_idx_images(directory / images_name)
    labels = read_idx_labels(directory / labels_name)
    if len(images) != len(labels):
        raise DatasetError(
            f"{directory}: {len(images)} images but {len(labels)} labels in split {split!r}"
        )
    return images, labels


def read_idx_images(path: Path) -> np.ndarray:
    """Reads a gzip-compressed IDX image file into uint8 (N, 28, 28, 1)."""
    data = _read_gzip(path)
    magic, count, rows, cols = _unpack_header(path, data, ">IIII")
    if magic != _IMAGES_MAGIC:
        raise DatasetError(f"{path}: magic number {magic}, expected {_IMAGES_MAGIC} (IDX images)")
    if (rows, cols) != IMAGE_SHAPE[:2]:
        raise DatasetError(f"{path}: images are {rows}x{cols}, expected 28x28")
    pixels = _payload(path, data, offset=16, expected=count * rows * cols)
    return pixels.reshape(count, rows, cols, 1)


def read_idx_labels(path: Path) -> np.ndarray:
    """Reads a gzip-compressed IDX label file into int64 (N,)."""
    data = _read_gzip(path)
    magic, count = _unpack_header(path, data, ">II")
    if magic != _LABELS_MAGIC:
        raise DatasetError(f"{path}: magic number {magic}, expected {_LABELS_MAGIC} (IDX labels)")
    return _payload(path, data, offset=8, expected=count).astype(np.int64)


def _read_gzip(path: Path) -> bytes:
    if not path.is_file():
        raise DatasetError(f"missing file {path}")
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as e:  # bad gzip header, truncated stream, bad CRC
        raise DatasetError(f"{path} is corrupt or truncated ({e})") from e


def _unpack_header(path: Path, data: bytes, layout: str) -> tuple[int, ...]:
    size = struct.calcsize(layout)
    if len(data) < size:
        raise DatasetError(f"{path} is truncated: {len(data)} bytes, shorter than its header")
    return struct.unpack(layout, data[:size])


def _payload(path: Path, data: bytes, offset: int, expected: int) -> np.ndarray:
    found = len(data) - offset
    if found != expected:
        raise DatasetError(
            f"{path} is truncated or corrupt: header promises {expected} bytes of data, found {found}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=offset)


def _load_without_data_dir(name: str, split: str, download: bool):
    tried = []
    prepared = _tfds_prepared_dir(name)
    if prepared is not None:
        try:
            return _read_tfds_prepared(name, split, prepared)
        except Exception as e:  # noqa: BLE001 - an unreadable copy is reported, then skipped
            tried.append(f"tensorflow-datasets copy in {prepared} could not be read: {e}")
    else:
        tried.append(f"no copy prepared by tensorflow-datasets under {_tfds_data_dir()}")
    if name == "fashion_mnist":
        if DEBIAN_FASHION_MNIST_DIR.is_dir():
            return read_idx_split(DEBIAN_FASHION_MNIST_DIR, split)
        tried.append(f"no {DEBIAN_FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)")
    if download:
        return _download_idx(name, split, tried)
    raise DatasetError(_not_found_message(name, split, tried + ["downloading was not allowed"]))


def _not_found_message(name: str, split: str, tried: list[str]) -> str:
    files = ", ".join(_IDX_FILES[split])
    return (
        f"could not find dataset {name!r} ({split} split). Tried:\n  - "
        + "\n  - ".join(tried)
        + f"\nPut the IDX files ({files}) in a directory and pass it as data_dir (--data-dir)."
    )


def _tfds_data_dir() -> Path:
    return Path(os.environ.get("TFDS_DATA_DIR", Path.home() / "tensorflow_datasets"))


def _tfds_prepared_dir(name: str) -> Path | None:
    root = _tfds_data_dir() / name
    if not root.is_dir():
        return None
    infos = sorted(root.glob("*/dataset_info.json"))
    return infos[-1].parent if infos else None


def _read_tfds_prepared(name: str, split: str, prepared: Path):
    import tensorflow_datasets as tfds  # imported late: slow, and needed only here

    source = tfds.data_source(name, split=split, data_dir=str(_tfds_data_dir()), download=False)
    count = len(source)
    images = np.empty((count, *IMAGE_SHAPE), dtype=np.uint8)
    labels = np.empty((count,), dtype=np.int64)
    for i in range(count):
        example = source[i]
        images[i] = np.asarray(example["image"], dtype=np.uint8).reshape(IMAGE_SHAPE)
        labels[i] = int(example["label"])
    return images, labels


def _download_idx(name: str, split: str, tried: list[str]):
    import tensorflow_datasets as tfds

    builder = {"mnist": tfds.image_classification.MNIST,
               "fashion_mnist": tfds.image_classification.FashionMNIST}[name]
    host = urllib.parse.urlparse(builder.URL).hostname
    if not _reachable(host):
        tried.append(f"cannot reach {host} to download (no network?)")
        raise DatasetError(_not_found_message(name, split, tried))
    download_dir = _tfds_data_dir() / "downloads" / name
    manager = tfds.download.DownloadManager(download_dir=str(download_dir))
    paths = manager.download({f: builder.URL + f for f in _IDX_FILES[split]})
    # The download manager names files by URL and checksum: copy under the standard names.
    target = download_dir / "idx"
    target.mkdir(parents=True, exist_ok=True)
    for filename, path in paths.items():
        (target / filename).write_bytes(Path(path).read_bytes())
    return read_idx_split(target, split)


def _reachable(host: str, timeout: float = 3.0) -> bool:
    """True when ``host`` resolves and accepts a TCP connection within ``timeout`` seconds.

    Name resolution has no timeout of its own, so it runs in a daemon thread.
    """
    result = []

    def probe():
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result)


def scale_images(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [-1, 1], as the tutorial does: (x / 255 - 0.5) * 2."""
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    return ((images.astype(np.float32) / 255.0 - 0.5) * 2.0).astype(np.float32)
