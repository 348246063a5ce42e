from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archlab.estimate.data import load_data, load_digits, load_image_folder, to_input


def _write_pngs(root: Path, counts: dict[str, int], size: int = 10) -> None:
    rng = np.random.default_rng(0)
    for label, n in counts.items():
        (root / label).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (size, size + 3, 3), dtype=np.uint8)  # not square
            Image.fromarray(pixels).save(root / label / f"{i}.png")


def test_digits_have_a_fixed_stratified_split() -> None:
    data = load_digits(16)
    assert data.num_classes == 10 and data.resolution == 16
    assert len(data.train_images) + len(data.val_images) == 1797
    assert data.train_images.dtype == torch.uint8 and data.train_images.shape[1:] == (3, 16, 16)
    counts = torch.bincount(data.val_labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 20% of each class (174-183 per class)
    again = load_digits.__wrapped__(16)  # uncached: the split must not depend on the call
    assert torch.equal(again.val_labels, data.val_labels)
    assert torch.equal(again.val_images, data.val_images)


def test_image_folder_is_read_resized_and_split_per_class(tmp_path: Path) -> None:
    _write_pngs(tmp_path, {"cat": 5, "dog": 10, "eel": 2})
    data = load_image_folder(tmp_path, 8, val_fraction=0.2)
    assert data.classes == ("cat", "dog", "eel")
    assert data.train_images.shape[1:] == (3, 8, 8) and data.train_images.dtype == torch.uint8
    assert torch.bincount(data.val_labels, minlength=3).tolist() == [1, 2, 1]
    assert torch.bincount(data.train_labels, minlength=3).tolist() == [4, 8, 1]
    x = to_input(data.train_images)
    assert x.dtype == torch.float32 and -1.0 <= x.min() and x.max() <= 1.0


def test_image_folder_with_train_and_val_folders_keeps_that_split(tmp_path: Path) -> None:
    _write_pngs(tmp_path / "train", {"a": 3, "b": 4})
    _write_pngs(tmp_path / "val", {"a": 1, "b": 2})
    data = load_data(tmp_path, 8)
    assert data.classes == ("a", "b")
    assert data.val_labels.tolist() == [0, 1, 1] and len(data.train_labels) == 7


def test_image_folder_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_image_folder(tmp_path / "missing", 8)
    _write_pngs(tmp_path / "one", {"only": 3})
    with pytest.raises(ValueError, match="at least two class sub-folders"):
        load_image_folder(tmp_path / "one", 8)
    _write_pngs(tmp_path / "broken", {"a": 2, "b": 2})
    (tmp_path / "broken" / "a" / "bad.png").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read image .*bad.png"):
        load_image_folder(tmp_path / "broken", 8)


def test_load_data_defaults_to_digits() -> None:
    assert load_data(None, 16).name == "digits"
    assert load_data("digits", 16).name == "digits"
