"""What a finished search leaves in its study folder: ``spec.yaml``, ``pareto.csv`` and, for a
predicted-latency search whose front had members over the target when measured,
``over_target_when_measured.csv``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import yaml

from archlab.study.storage import study_dir
from archlab.study.trials import over_target_frame, pareto_frame

__all__ = ["OVER_TARGET_CSV", "write_study_outputs"]

OVER_TARGET_CSV = "over_target_when_measured.csv"


def write_study_outputs(study: optuna.Study, record: dict[str, Any]) -> Path:
    """Write the study's record, its feasible Pareto front (judged on measured latencies where
    there are some) and the members that measured over the target; return the folder."""
    out = study_dir(study.study_name)
    (out / "spec.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    pareto_frame(study).to_csv(out / "pareto.csv", index=False)
    over = over_target_frame(study)
    if not over.empty:
        over.to_csv(out / OVER_TARGET_CSV, index=False)
    return out
