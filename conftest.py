"""Shared test fixtures: the real data sets that live outside the repository.

A test that needs them skips only outside CI; under CI=true a missing data set fails.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist-10k"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def require_dir(path: Path, how_to_get: str) -> Path:
    if path.is_dir():
        return path
    message = f"{path} is missing ({how_to_get})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"under CI the data must be present: {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The 10,000 real MNIST digits shipped beside the repository in ../shared."""
    return require_dir(SHARED_MNIST, "the shared data directory beside the repository")


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    """Debian's real Fashion-MNIST (apt-get install dataset-fashion-mnist)."""
    return require_dir(DEBIAN_FASHION_MNIST, "apt-get install dataset-fashion-mnist")
