"""Fashion-MNIST from its IDX files: the data set the accuracy evidence is measured on.

The IDX format (LeCun et al., the MNIST distribution) is a big-endian header, ``0 0 <type> <ndim>``
followed by one 32-bit size per dimension, then the array. Files may be gzipped. Nothing is
downloaded: the files come from the Debian package ``dataset-fashion-mnist`` or from a folder the
user names.
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DEFAULT_DIR",
    "FASHION_CLASSES",
    "FashionMnistMissing",
    "fashion_mnist_dir",
    "has_idx_files",
    "load_fashion_mnist_arrays",
    "read_idx",
    "resize_grey",
]

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "ARCHLAB_FASHION_MNIST"
FASHION_CLASSES = (
    "t-shirt/top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip
_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}  # fmt: skip


class FashionMnistMissing(FileNotFoundError):
    """The IDX files are not where we looked; the message says how to get them."""


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in one IDX file (gzipped or not).

    Raises:
        ValueError: the file is not IDX, or is shorter or longer than its header says.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: broken gzip stream ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} of {header} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{path}: truncated or padded IDX file: shape {shape} needs {expected} bytes, "
            f"the file has {len(raw)}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _idx_path(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def has_idx_files(root: str | Path) -> bool:
    """True if ``root`` holds the four Fashion-MNIST (or MNIST-layout) IDX files."""
    return all(_idx_path(Path(root), stem) for stem in _FILES.values())


def fashion_mnist_dir(root: str | Path | None = None) -> Path:
    """The folder with the four IDX files: ``root``, else ``$ARCHLAB_FASHION_MNIST``, else Debian's.

    Raises:
        FashionMnistMissing: a file is missing; the message says how to install or point to them.
    """
    where = Path(root or os.environ.get(ENV_VAR) or DEFAULT_DIR)
    missing = [stem for stem in _FILES.values() if _idx_path(where, stem) is None]
    if missing:
        raise FashionMnistMissing(
            f"Fashion-MNIST not found in {where} (missing {', '.join(missing)}): install it with "
            f"`apt-get install dataset-fashion-mnist`, or set {ENV_VAR}=DIR to a folder holding "
            "the four IDX files"
        )
    return where


def load_fashion_mnist_arrays(root: str | None = None) -> dict[str, np.ndarray]:
    """The four arrays (uint8 images (N, 28, 28), int64 labels), checked against each other.

    Read once per folder and file state; the arrays are shared: copy before changing them.

    Raises:
        FashionMnistMissing: see :func:`fashion_mnist_dir`.
        ValueError: a file is malformed, or images and labels disagree in number.
    """
    where = fashion_mnist_dir(root)
    state = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(where.iterdir()))
    return _read_arrays(where, state)


@functools.lru_cache(maxsize=2)
def _read_arrays(where: Path, _state: tuple[tuple[str, int, int], ...]) -> dict[str, np.ndarray]:
    arrays = {key: read_idx(_idx_path(where, stem)) for key, stem in _FILES.items()}  # type: ignore[arg-type]
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{where}: {split} images {images.shape} and labels {labels.shape} do not match"
            )
        arrays[f"{split}_labels"] = labels.astype(np.int64)
    return arrays


def resize_grey(images: np.ndarray, resolution: int) -> torch.Tensor:
    """uint8 grey (N, H, W) → uint8 (N, 3, R, R), bilinear, the channel repeated as a view."""
    x = torch.from_numpy(np.ascontiguousarray(images))[:, None]
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        out = torch.empty((len(x), 1, resolution, resolution), dtype=torch.uint8)
        for start in range(0, len(x), 4096):  # bounded float memory at large resolutions
            chunk = x[start : start + 4096].float()
            big = F.interpolate(chunk, size=(resolution, resolution), mode="bilinear")
            out[start : start + 4096] = big.clamp(0, 255).round().to(torch.uint8)
        x = out
    return x.expand(-1, 3, -1, -1)
