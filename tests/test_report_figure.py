from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from archlab.report.figure import save_stage_figure

_STAGES = pd.DataFrame(
    {
        "stage": ["stem", "stages.0", "(rest of forward)"],
        "params": [10, 90, 0],
        "macs": [100, 300, 0],
        "latency_ms": [1.0, 2.5, 0.5],
        "params_share": [0.1, 0.9, 0.0],
        "macs_share": [0.25, 0.75, 0.0],
        "latency_share": [0.25, 0.625, 0.125],
    }
)


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_figure_is_written_in_the_suffixes_format(tmp_path: Path, suffix: str) -> None:
    path = save_stage_figure(_STAGES, "toy", tmp_path / "sub" / f"stages{suffix}")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data[:2000]


def test_figure_without_latency_and_bad_suffix(tmp_path: Path) -> None:
    no_latency = _STAGES.assign(latency_ms=None, latency_share=None)
    assert save_stage_figure(no_latency, "toy", tmp_path / "a.png").exists()
    with pytest.raises(ValueError, match="use one of"):
        save_stage_figure(_STAGES, "toy", tmp_path / "a.jpg")
