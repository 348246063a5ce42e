"""Fashion-MNIST from IDX files: the reader on files the test writes, and the installed data set."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from ci import missing
from idx_files import idx_bytes, write_idx_set

from archlab.estimate.data import load_data, load_fashion_mnist, sample_training_images
from archlab.estimate.fashion_mnist import (
    DEFAULT_DIR,
    FashionMnistMissing,
    fashion_mnist_dir,
    load_fashion_mnist_arrays,
    read_idx,
)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips(tmp_path: Path, gz: bool) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(idx_bytes(array)) if gz else idx_bytes(array))
    np.testing.assert_array_equal(read_idx(path), array)


def test_a_truncated_idx_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.idx"
    path.write_bytes(idx_bytes(np.zeros((4, 28, 28)))[:-10])
    expected = r"cut.idx: truncated.*\(4, 28, 28\) needs 3152 bytes, the file has 3142"
    with pytest.raises(ValueError, match=expected):
        read_idx(path)


def test_a_file_that_is_not_idx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.idx"
    path.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)


def test_a_folder_of_idx_files_loads_with_a_validation_split(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "fm", gz=True)
    data = load_data(str(tmp_path / "fm"), 32)
    assert data.train_images.shape == (50, 3, 32, 32)
    assert data.val_images.shape == (10, 3, 32, 32)  # one of each class's six
    assert sorted(data.val_labels.tolist()) == list(range(10))
    assert data.test_images is not None and data.test_images.shape == (20, 3, 32, 32)
    assert data.num_classes == 10
    assert bool((data.train_images[:, 0] == data.train_images[:, 2]).all())  # grey → 3 channels


def test_a_missing_data_set_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHLAB_FASHION_MNIST", str(tmp_path / "nowhere"))
    with pytest.raises(FashionMnistMissing, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist_dir()


def test_the_environment_variable_points_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_idx_set(tmp_path / "mine")
    monkeypatch.setenv("ARCHLAB_FASHION_MNIST", str(tmp_path / "mine"))
    assert fashion_mnist_dir() == tmp_path / "mine"


def test_the_installed_data_set() -> None:
    if not DEFAULT_DIR.is_dir():
        missing("Fashion-MNIST", "apt-get install dataset-fashion-mnist; .ci/run does")
    data = load_fashion_mnist(32, str(DEFAULT_DIR))
    assert len(data.train_images) == 50_000 and len(data.val_images) == 10_000
    assert data.test_images is not None and len(data.test_images) == 10_000
    assert np.bincount(data.val_labels.numpy()).tolist() == [1000] * 10


def test_a_probe_batch_is_the_training_split_drawn_without_resizing_it_all(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "fm", n_train=120)
    whole = load_data(str(tmp_path / "fm"), 40)
    for seed in (0, 3):
        images, labels = sample_training_images(
            str(tmp_path / "fm"), 40, 8, np.random.default_rng(seed)
        )
        picked = np.random.default_rng(seed).choice(len(whole.train_images), 8, replace=False)
        assert images.equal(whole.train_images[picked])
        assert labels.equal(whole.train_labels[picked])


def test_rewritten_idx_files_are_read_again(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "fm", n_train=60)
    assert len(load_fashion_mnist_arrays(str(tmp_path / "fm"))["train_labels"]) == 60
    write_idx_set(tmp_path / "fm", n_train=70)
    assert len(load_fashion_mnist_arrays(str(tmp_path / "fm"))["train_labels"]) == 70
