from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from archlab.measurement.memory import parse_bytes, peak_memory
from archlab.space import load_space


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("200MB", 200_000_000),
        ("1.5GB", 1_500_000_000),
        ("512MiB", 512 * 2**20),
        ("1000", 1000),
        ("64 kb", 64_000),
    ],
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["lots", "-5MB", "0", "3 parsecs"])
def test_parse_bytes_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="not a memory size"):
        parse_bytes(text)


def test_peak_covers_weights_input_and_the_largest_activation() -> None:
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 8, 1))
    use = peak_memory(model, 32)
    weights = sum(p.numel() * 4 for p in model.parameters())
    assert use.weights_bytes == weights and use.input_bytes == 3 * 32 * 32 * 4
    assert use.activations_peak_bytes >= 64 * 32 * 32 * 4  # the first conv's output is live
    assert use.peak_bytes == use.weights_bytes + use.input_bytes + use.activations_peak_bytes


def test_peak_grows_with_resolution_and_is_repeatable() -> None:
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.GELU())
    small, again, large = peak_memory(model, 32), peak_memory(model, 32), peak_memory(model, 64)
    assert small.activations_peak_bytes == again.activations_peak_bytes
    assert large.activations_peak_bytes > small.activations_peak_bytes


def test_memory_events_alone_give_the_full_profiles_peak(tiny_space_path: Path) -> None:
    from archlab.measurement.memory import (
        _activation_peak,
        _full_profile_memory_events,
        _memory_events,
    )

    space = load_space(str(tiny_space_path))
    torch.manual_seed(0)
    model = space.family.build(space.to_cfg(space.default())).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        model(x)
        with _memory_events() as scoped:
            model(x)
        with _full_profile_memory_events() as full:
            model(x)
    assert scoped and len(scoped) == len(full)
    assert _activation_peak(scoped) == _activation_peak(full) > 0
