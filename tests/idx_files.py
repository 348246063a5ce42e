"""IDX files written by the tests: a stand-in for Fashion-MNIST (random images, cyclic labels)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` as an IDX file of unsigned bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(root: Path, n_train: int = 60, n_test: int = 20, gz: bool = False) -> None:
    """The four Fashion-MNIST files under ``root``, 28x28 random images, labels 0..9 in turn."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)),
        "train_labels": np.arange(n_train) % 10,
        "test_images": rng.integers(0, 256, (n_test, 28, 28)),
        "test_labels": np.arange(n_test) % 10,
    }
    root.mkdir(parents=True, exist_ok=True)
    for key, stem in NAMES.items():
        data = idx_bytes(arrays[key])
        if gz:
            (root / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (root / stem).write_bytes(data)
