"""What a finished search leaves in its study folder: ``spec.yaml`` and ``pareto.csv``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import yaml

from archlab.study.storage import study_dir
from archlab.study.trials import pareto_frame

__all__ = ["write_study_outputs"]


def write_study_outputs(study: optuna.Study, record: dict[str, Any]) -> Path:
    """Write the study's record and its feasible Pareto front; return the folder."""
    out = study_dir(study.study_name)
    (out / "spec.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    pareto_frame(study).to_csv(out / "pareto.csv", index=False)
    return out
