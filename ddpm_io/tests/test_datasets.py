import gzip
import struct

import numpy as np
import pytest

from ddpm_io import datasets
from ddpm_io.datasets import DatasetError, load_dataset, scale_images


def write_idx_images(path, images, magic=2051):
    n, h, w = images.shape[:3]
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", magic, n, h, w) + images.astype(np.uint8).tobytes())


def write_idx_labels(path, labels, magic=2049):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">II", magic, len(labels)) + np.asarray(labels, np.uint8).tobytes())


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    write_idx_images(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (5, 28, 28)))
    write_idx_labels(tmp_path / "train-labels-idx1-ubyte.gz", [0, 1, 2, 3, 4])
    return tmp_path


@pytest.fixture
def no_local_sources(tmp_path, monkeypatch):
    """No tensorflow-datasets copy and no Debian package: only a download could help."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian")


def test_shared_mnist_digits(mnist_dir):
    images, labels = load_dataset("mnist", data_dir=mnist_dir)
    assert images.shape == (10000, 28, 28, 1) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))
    # Real digits: dark background, bright strokes, about 19% of pixels lit.
    assert images.max() == 255 and 0.1 < (images > 128).mean() < 0.3
    assert np.bincount(labels).tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


def test_limit_keeps_the_first_images(mnist_dir):
    images, labels = load_dataset("mnist", data_dir=mnist_dir, limit=7)
    full, full_labels = load_dataset("mnist", data_dir=mnist_dir)
    assert images.shape == (7, 28, 28, 1)
    np.testing.assert_array_equal(images, full[:7])
    np.testing.assert_array_equal(labels, full_labels[:7])


def test_fashion_mnist_from_debian_package(fashion_mnist_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))  # make sure the Debian copy is what is read
    images, labels = load_dataset("fashion_mnist", split="test")
    assert images.shape == (10000, 28, 28, 1) and labels.shape == (10000,)
    assert np.bincount(labels).tolist() == [1000] * 10


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(DatasetError, match="unknown dataset 'cifar10'.*mnist, fashion_mnist"):
        load_dataset("cifar10")


def test_missing_data_dir(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")


def test_missing_file_is_named(mnist_dir):
    with pytest.raises(DatasetError, match="missing file .*t10k-images-idx3-ubyte.gz"):
        load_dataset("mnist", split="test", data_dir=mnist_dir)


def test_reads_what_it_wrote(idx_dir):
    images, labels = load_dataset("mnist", data_dir=idx_dir)
    assert images.shape == (5, 28, 28, 1) and labels.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda p: write_idx_images(p, np.zeros((5, 28, 28)), magic=2049), "magic number 2049"),
        (lambda p: write_idx_images(p, np.zeros((5, 32, 32))), "32x32, expected 28x28"),
        (lambda p: p.write_bytes(gzip.compress(struct.pack(">IIII", 2051, 5, 28, 28) + bytes(100))),
         "truncated or corrupt"),
        (lambda p: p.write_bytes(b"not gzip at all"), "corrupt or truncated"),
        (lambda p: p.write_bytes(gzip.compress(b"\x00\x00")), "shorter than its header"),
        (lambda p: p.write_bytes(gzip.compress(np.random.default_rng(0).bytes(5000))[:200]),
         "corrupt or truncated"),
    ],
    ids=["magic", "size", "short-payload", "not-gzip", "short-header", "cut-gzip"],
)
def test_corrupt_image_file_is_named(idx_dir, corrupt, message):
    path = idx_dir / "train-images-idx3-ubyte.gz"
    corrupt(path)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset("mnist", data_dir=idx_dir)
    assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_label_count_must_match(idx_dir):
    write_idx_labels(idx_dir / "train-labels-idx1-ubyte.gz", [1, 2, 3])
    with pytest.raises(DatasetError, match="5 images but 3 labels"):
        load_dataset("mnist", data_dir=idx_dir)


def test_no_source_fails_fast_and_says_where_to_put_files(no_local_sources):
    with pytest.raises(DatasetError) as info:
        load_dataset("fashion_mnist", download=False)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and "--data-dir" in message
    assert "dataset-fashion-mnist" in message


def test_unreachable_download_host_fails_fast(no_local_sources, monkeypatch):
    # Stands in for a machine with no network, without touching the network.
    monkeypatch.setattr(datasets, "_reachable", lambda host, timeout=3.0: False)
    with pytest.raises(DatasetError, match="cannot reach storage.googleapis.com"):
        load_dataset("mnist")


def test_bad_limit(mnist_dir):
    with pytest.raises(DatasetError, match="positive"):
        load_dataset("mnist", data_dir=mnist_dir, limit=0)


def test_scale_images_to_minus_one_one():
    x = scale_images(np.array([0, 255, 128], np.uint8).reshape(3, 1, 1, 1))
    assert x.dtype == np.float32
    np.testing.assert_allclose(x.ravel(), [-1.0, 1.0, (128 / 255 - 0.5) * 2], atol=1e-7)
    with pytest.raises(ValueError, match="uint8"):
        scale_images(np.zeros((1, 28, 28, 1), np.float32))
