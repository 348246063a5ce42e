"""What the Trial page computes beyond the stored metrics: where the time goes per stage, whether
the trial is on the front, and the files of the CLI's export (``archlab export``).

Both the stage timing and the export run the model on this CPU, so the page runs them only on
request: while a search is timing trials on the same machine, each slows the other down.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from torch import nn

from archlab.dashboard.data import StudyData, study_space
from archlab.dashboard.front import front_2d
from archlab.measurement.blocks import stage_names
from archlab.measurement.flops import count_macs
from archlab.report.breakdown import module_timing, stage_table
from archlab.report.export import ExportError, export_trial

__all__ = ["TrialFiles", "on_front", "stage_latency", "trial_files"]

_WRITTEN = "; config.yaml and model.pt in"  # the export's note on what it wrote: a temporary dir


def on_front(data: StudyData, number: int) -> bool | None:
    """Whether trial ``number`` is on the feasible front of latency vs the accuracy estimate
    (None: the study has no accuracy estimate)."""
    accuracy = data.accuracy_metric
    if accuracy is None:
        return None
    return number in set(front_2d(data.trials, "latency_ms", accuracy)["number"])


def stage_latency(data: StudyData, model: nn.Module, runs: int = 10) -> pd.DataFrame:
    """The per-stage table of ``archlab report --breakdown`` for a trial's model, timed here.

    Every stage's blocks are timed in context (hooks inside ``runs`` whole forward passes) at the
    study's resolution and thread count; columns as in
    :func:`archlab.report.breakdown.stage_table`.

    Raises:
        ValueError: the study stores no space.
    """
    resolution = study_space(data).resolution
    threads = data.record.settings.threads if data.record else 1
    timing = module_timing(model, resolution, stage_names(model), threads=threads, runs=runs)
    return stage_table(model, count_macs(model, resolution), timing)


@dataclass
class TrialFiles:
    """The exported files by name, and what became of the ONNX export."""

    files: dict[str, bytes] = field(default_factory=dict)
    onnx_note: str = ""  # how model.onnx was checked, or why it is missing
    onnx_failed: bool = False


def trial_files(url: str, name: str, number: int) -> TrialFiles:
    """Export a complete trial as ``archlab export`` does and read the files back.

    An ONNX export that fails (some families use ops the exporter cannot write) leaves the other
    files and says why, instead of failing the whole export.

    Raises:
        ExportError: no such trial, or it is not complete. StorageError: no such study.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "export"
        try:
            note, failed = export_trial(name, number, out=out, storage=url).onnx_note, False
        except ExportError as err:
            if not (out / "model.pt").is_file():
                raise
            note, failed = str(err).split(_WRITTEN)[0], True
        kept = [p for p in sorted(out.iterdir()) if not (failed and p.name == "model.onnx")]
        return TrialFiles({p.name: p.read_bytes() for p in kept}, note, failed)
