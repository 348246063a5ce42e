"""Real image datasets for training and accuracy estimates: Fashion-MNIST, digits or an ImageFolder.

* ``fashion-mnist``: Xiao et al., "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine
  Learning Algorithms", arXiv 1708.07747 (2017): 60,000 training and 10,000 test images, 28×28 grey,
  10 classes. Read from its four IDX files (plain or gzipped), as the Debian package
  ``dataset-fashion-mnist`` installs them in ``/usr/share/datasets/fashion-mnist/``;
  ``ARCHLAB_FASHION_MNIST=DIR`` or a ``DIR`` holding the four files points elsewhere. The
  validation split (10,000 images by default) is carved from the training set with a fixed seed;
  the test set is kept apart for the final report of chosen architectures.
* ``digits``: scikit-learn's bundled 8×8 handwritten digits (1797 images, 10 classes; no download),
  upsampled bilinearly to the requested resolution and repeated over 3 channels.
* an ImageFolder directory: one sub-folder per class holding images (``root/cat/001.png``), read
  with PIL (no torchvision), converted to RGB and resized to ``resolution`` × ``resolution``. If
  ``root`` holds ``train/`` and ``val/`` folders of that layout, they are the split.

Without a given split, a fixed seeded split keeps ``val_fraction`` of every class for validation,
so every architecture is scored on the same images. Images are kept in memory as uint8 NCHW tensors
and scaled to [-1, 1] per batch (the normalisation of :func:`archlab.estimate.proxies.probe_batch`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from archlab.estimate.fashion_mnist import (
    FASHION_CLASSES,
    has_idx_files,
    load_fashion_mnist_arrays,
    resize_grey,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageData",
    "FASHION_MNIST",
    "load_data",
    "load_digits",
    "load_fashion_mnist",
    "load_image_folder",
    "sample_training_images",
    "to_input",
]

FASHION_MNIST = "fashion-mnist"  # the built-in name accepted by --data
FASHION_VAL = 1 / 6  # of the training set kept for validation: 1,000 images per class
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


@dataclass(frozen=True)
class ImageData:
    """A labelled train/val split held in memory as uint8 NCHW images."""

    name: str  # "digits" or the folder path
    classes: tuple[str, ...]
    train_images: torch.Tensor  # (N, 3, R, R) uint8
    train_labels: torch.Tensor  # (N,) int64
    val_images: torch.Tensor  # (M, 3, R, R) uint8
    val_labels: torch.Tensor  # (M,) int64
    # a held-out test set, where the data set has one: only for the final report of chosen archs
    test_images: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None

    @property
    def resolution(self) -> int:
        return int(self.train_images.shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 images → float model input in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def _split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded per-class split: at least one validation image per class."""
    rng = np.random.default_rng(seed)
    train: list[np.intp] = []
    val: list[np.intp] = []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_val = max(1, round(len(idx) * val_fraction)) if len(idx) > 1 else 0
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


def _check_split_args(resolution: int, val_fraction: float) -> None:
    if resolution < 8:
        raise ValueError(f"resolution must be at least 8, got {resolution}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")


@functools.lru_cache(maxsize=4)
def load_digits(resolution: int, val_fraction: float = 0.2, seed: int = 0) -> ImageData:
    """scikit-learn's digits at ``resolution`` px, 3 channels, fixed stratified split."""
    from sklearn.datasets import load_digits as sk_digits  # ships with scikit-learn

    _check_split_args(resolution, val_fraction)
    bunch = sk_digits()
    small = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8)
    big = F.interpolate(small, size=(resolution, resolution), mode="bilinear", align_corners=False)
    images = (big.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = bunch.target.astype(np.int64)
    train, val = _split(labels, val_fraction, seed)
    y = torch.from_numpy(labels)
    classes = tuple(str(c) for c in range(10))
    return ImageData("digits", classes, images[train], y[train], images[val], y[val])


def _class_files(root: Path) -> dict[str, list[Path]]:
    if not root.is_dir():
        raise ValueError(f"data folder {root} does not exist or is not a directory")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {
        c.name: sorted(f for f in c.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        for c in classes
    }
    files = {name: fs for name, fs in files.items() if fs}
    if len(files) < 2:
        raise ValueError(
            f"{root} is not an ImageFolder: it needs at least two class sub-folders holding images "
            f"({', '.join(IMAGE_SUFFIXES)}); found {len(files)}"
        )
    return files


def _read_images(paths: list[Path], resolution: int) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(paths), resolution, resolution, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB").resize((resolution, resolution), Image.Resampling.BILINEAR)
        except (OSError, UnidentifiedImageError) as err:
            raise ValueError(f"cannot read image {path}: {err}") from None
        out[i] = np.asarray(rgb)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # (N, 3, R, R)


def _folder_arrays(
    files: dict[str, list[Path]], classes: tuple[str, ...], resolution: int
) -> tuple[torch.Tensor, torch.Tensor]:
    paths = [p for c in classes for p in files.get(c, [])]
    labels = [i for i, c in enumerate(classes) for _ in files.get(c, [])]
    return _read_images(paths, resolution), torch.tensor(labels, dtype=torch.int64)


@functools.lru_cache(maxsize=4)
def load_image_folder(
    root: str | Path, resolution: int, val_fraction: float = 0.2, seed: int = 0
) -> ImageData:
    """An ImageFolder directory (class sub-folders of images) at ``resolution`` px.

    Raises:
        ValueError: the folder is missing, has fewer than two classes, or an image is unreadable.
    """
    _check_split_args(resolution, val_fraction)
    root = Path(root)
    if (root / "train").is_dir() and (root / "val").is_dir():
        train_files, val_files = _class_files(root / "train"), _class_files(root / "val")
        classes = tuple(sorted(train_files))
        missing = sorted(set(val_files) - set(classes))
        if missing:
            raise ValueError(f"{root}/val has classes {missing} that {root}/train lacks")
        train_x, train_y = _folder_arrays(train_files, classes, resolution)
        val_x, val_y = _folder_arrays(val_files, classes, resolution)
        return ImageData(str(root), classes, train_x, train_y, val_x, val_y)
    files = _class_files(root)
    classes = tuple(sorted(files))
    images, labels = _folder_arrays(files, classes, resolution)
    train, val = _split(labels.numpy(), val_fraction, seed)
    return ImageData(str(root), classes, images[train], labels[train], images[val], labels[val])


@functools.lru_cache(maxsize=4)
def load_fashion_mnist(
    resolution: int, root: str | None = None, val_fraction: float = FASHION_VAL, seed: int = 0
) -> ImageData:
    """Fashion-MNIST at ``resolution`` px, 3 channels; validation carved from the training set.

    The default ``val_fraction`` keeps 1,000 of each class's 6,000 training images (10,000 in all)
    for validation; the 10,000 test images are returned apart as ``test_images``.

    Raises:
        archlab.estimate.fashion_mnist.FashionMnistMissing: the IDX files are not installed
        (one-line fix).
        ValueError: an IDX file is malformed.
    """
    _check_split_args(resolution, val_fraction)
    arrays = load_fashion_mnist_arrays(root)
    labels = arrays["train_labels"]
    train, val = _split(labels, val_fraction, seed)
    images = resize_grey(arrays["train_images"], resolution)
    y = torch.from_numpy(labels)
    return ImageData(
        FASHION_MNIST,
        FASHION_CLASSES,
        images[train],
        y[train],
        images[val],
        y[val],
        resize_grey(arrays["test_images"], resolution),
        torch.from_numpy(arrays["test_labels"]),
    )


def _idx_root(data: str | Path) -> str | None | bool:
    """The IDX folder ``data`` names (None: the installed Fashion-MNIST), or False if none."""
    if str(data) in (FASHION_MNIST, "fashion_mnist"):
        return None
    path = Path(data).resolve()
    return str(path) if path.is_dir() and has_idx_files(path) else False


def sample_training_images(
    data: str | Path | None, resolution: int, batch: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` images (uint8, 3 channels) and labels drawn by ``rng`` from the training split of
    :func:`load_data`'s ``data``: the same images as indexing that split, but an IDX data set is
    resized only where drawn (a probe batch then costs a file read, not 60,000 resizes)."""
    root = _idx_root(data) if data is not None and str(data) != "digits" else False
    if root is False:
        source = load_data(data, resolution)
        chosen = torch.from_numpy(rng.choice(len(source.train_images), batch, replace=False))
        return source.train_images[chosen], source.train_labels[chosen].clone()
    arrays = load_fashion_mnist_arrays(root)  # type: ignore[arg-type]
    train, _ = _split(arrays["train_labels"], FASHION_VAL, 0)  # load_fashion_mnist's default
    picked = train[rng.choice(len(train), batch, replace=False)]
    labels = torch.from_numpy(arrays["train_labels"][picked])
    return resize_grey(arrays["train_images"][picked], resolution), labels


def load_data(
    data: str | Path | None, resolution: int, val_fraction: float | None = None
) -> ImageData:
    """Images for training and estimates, by name or folder.

    ``None`` or ``"digits"``: the built-in digits; ``"fashion-mnist"``: Fashion-MNIST from its
    installed IDX files; a folder holding the four IDX files: Fashion-MNIST (or any data set in that
    layout) read from there; any other folder: an ImageFolder. ``val_fraction`` overrides the share
    of the training set held out for validation (each loader has its own default; a folder with
    ``train/`` and ``val/`` keeps its own split).
    """
    split = {} if val_fraction is None else {"val_fraction": val_fraction}
    if data is None or str(data) == "digits":
        return load_digits(resolution, **split)
    if str(data) in (FASHION_MNIST, "fashion_mnist"):
        return load_fashion_mnist(resolution, **split)
    path = Path(data).resolve()
    if path.is_dir() and has_idx_files(path):
        return load_fashion_mnist(resolution, str(path), **split)
    return load_image_folder(str(path), resolution, **split)
