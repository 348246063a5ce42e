"""What the dashboard shows, as plain data: the studies of a storage, one study's trials, the
metrics' names, and a trial's config and report (fronts: :mod:`.front`; comparisons:
:mod:`.compare`).

No Streamlit here: the app (``app/``) caches these results and lays them out. A study is read with
:func:`load_study_data` and cached on :func:`study_stamp`, a cheap fingerprint (trials per state
and the last completion time) that changes whenever a running search finishes a trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import torch
import yaml
from optuna.storages import BaseStorage, RDBStorage
from torch import nn

from archlab.dashboard.units import fmt_metric
from archlab.estimate.evidence import Evidence, axis_suffix, load_evidence, trained_reference
from archlab.report.tables import (
    ModelReport,
    fmt_module_table,
    markdown_table,
    model_report,
)
from archlab.space import SearchSpace
from archlab.study.objectives import OBJECTIVES
from archlab.study.record import RECORD_ATTR, StudyRecord
from archlab.study.storage import STARTED_STATES, StorageError, default_storage_url, open_storage
from archlab.study.trials import (
    TRAINED_ACCURACY,
    TRAINED_ATTR,
    TRAINED_REFERENCES_ATTR,
    trained_outcomes,
    trained_recipes,
    trials_frame,
    with_trained_accuracy,
)

__all__ = [
    "COSTS",
    "METRICS",
    "STATUSES",
    "StudyData",
    "count_text",
    "build_trial_model",
    "load_study_data",
    "objective_label",
    "open_dashboard_storage",
    "preset_label",
    "preset_table",
    "study_rows",
    "study_space",
    "study_stamp",
    "to_second",
    "trial_config",
    "trial_file_stem",
    "trial_markdown",
    "trial_report",
    "unplotted_note",
    "with_trained_references",
]

_LABELS = {
    "latency_ms": "latency (ms, median)",
    "naswot": "accuracy estimate: NASWOT score",
    "synflow": "accuracy estimate: log synflow",
    "grad_norm": "accuracy estimate: gradient norm",
    "zico": "accuracy estimate: ZiCo",
    "swap": "accuracy estimate: SWAP",
    "meco": "accuracy estimate: MeCo",
    "knob_ridge": "accuracy estimate: knob ridge fitted on the ground truth",
    "val_acc": "accuracy estimate: short-training val. accuracy",
    "train_1_8": "accuracy estimate: 1/8 of the reference training",
    "train_1_4": "accuracy estimate: 1/4 of the reference training",
    "tse_1_64": "accuracy estimate: training speed (−loss, 1/64 of the reference training)",
    "macs": "MACs",
    "params": "parameters",
    "latency_iqr_ms": "latency IQR (ms)",
    "peak_memory_bytes": "peak memory (bytes)",
}
#: Metrics a trial may store that can go on an axis: name → (direction, axis label). The
#: objectives' metrics, latency first, then the accuracy estimates, then the costs.
METRICS: dict[str, tuple[str, str]] = {
    o.metric: (o.direction, _LABELS.get(o.metric, o.description))
    for o in sorted(
        OBJECTIVES.values(), key=lambda o: (o.metric != "latency_ms", o.direction == "minimize")
    )
}
#: Accuracy after real training with the ground-truth recipe (``archlab train``), where stored.
TRAINED = TRAINED_ACCURACY  # the column study.trials.with_trained_accuracy adds
TRAINED_SOURCE = "trained_accuracy_source"  # of a preset's trained accuracy
METRICS[TRAINED] = ("maximize", "trained accuracy (validation, ground-truth recipe)")
for _cost in ("latency_iqr_ms", "peak_memory_bytes"):  # measured with every trial, not objectives
    METRICS[_cost] = ("minimize", _LABELS[_cost])
#: Metrics that measure what a model costs (the others estimate or measure accuracy).
COSTS = ("latency_ms", "latency_iqr_ms", "params", "macs", "peak_memory_bytes")
#: Metrics that estimate accuracy (higher is better), in the order the dashboard prefers them.
ACCURACY_METRICS = (
    "train_1_4", "train_1_8", "knob_ridge", "tse_1_64", "naswot", "synflow", "grad_norm", "zico",
    "swap", "meco", "val_acc",
)  # fmt: skip
#: How a trial is shown: a finished trial within or over the latency target, or one that stopped.
STATUSES = ("feasible", "infeasible", "pruned", "failed", "running")
_STATE_STATUS = {"PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "running"}
_TRIAL_STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
_SIZES = ("params", "macs", "peak_memory_bytes")


def open_dashboard_storage(url: str | None) -> BaseStorage:
    """Open a storage for reading, refusing to create a SQLite file that is not there.

    Raises:
        StorageError: malformed URL, unreachable server, or a SQLite file that does not exist.
    """
    url = url or default_storage_url()
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
        raise StorageError(
            f"no SQLite file at {url[len('sqlite:///') :]}; run `archlab search` first "
            "or pass the right --storage URL"
        )
    return open_storage(url)


def _state_counts(storage: BaseStorage, study_id: int) -> tuple[dict[str, int], str | None]:
    """Trials per state and the last completion time, by one SQL query where possible."""
    if isinstance(storage, RDBStorage):
        from sqlalchemy import text

        query = text(
            "SELECT state, COUNT(*), MAX(datetime_complete) FROM trials "
            "WHERE study_id = :study_id GROUP BY state"
        )
        try:
            with storage.engine.connect() as conn:
                rows = conn.execute(query, {"study_id": study_id}).all()
            last = max((str(r[2]) for r in rows if r[2] is not None), default=None)
            return {str(getattr(r[0], "name", r[0])): int(r[1]) for r in rows}, last
        except Exception:  # another schema: fall back to loading the trials
            pass
    trials = storage.get_all_trials(study_id, deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    done = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    return counts, str(max(done)) if done else None


def study_stamp(storage: BaseStorage, name: str) -> tuple[Any, ...]:
    """A fingerprint of a study's trials that changes when a trial starts or finishes.

    Raises:
        StorageError: no study of that name.
    """
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        raise StorageError(f"no study {name!r} in this storage") from None
    counts, last = _state_counts(storage, study_id)
    return (*sorted(counts.items()), last)


def study_rows(storage: BaseStorage) -> pd.DataFrame:
    """One row per study: space, objectives, target latency and trials per state."""
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        stored = summary.user_attrs.get(RECORD_ATTR)
        record = StudyRecord.from_attr(stored) if stored else None
        counts, last = _state_counts(storage, storage.get_study_id_from_name(summary.study_name))
        rows.append(
            {
                "study": summary.study_name,
                "space": record.space_name if record else "(not an archlab study)",
                "family": record.family if record else None,
                "objectives": ", ".join(record.settings.objective_names()) if record else "",
                "target_ms": record.settings.target_latency_s * 1e3 if record else None,
                "resolution": record.resolution if record else None,
                "trials": sum(counts.values()),
                **{state.lower(): counts.get(state, 0) for state in _TRIAL_STATES[:4]},
                "last_complete": to_second(last),
            }
        )
    return pd.DataFrame(rows)


def to_second(stamp: str | None) -> str | None:
    """'2024-12-06 02:41:33.123456' → '2024-12-06 02:41:33' (None stays None)."""
    return None if stamp is None else pd.Timestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class StudyData:
    """One study as the dashboard needs it: its spec, one row per trial, and each trial's arch."""

    name: str
    spec: dict[str, Any]
    metric_names: list[str]
    directions: list[str]
    trials: pd.DataFrame
    arch: dict[int, dict[str, Any]] = field(default_factory=dict)
    spec_reference: dict[str, Any] | None = None  # the study's stored hypervolume reference
    trained_references: dict[str, Any] = field(default_factory=dict)  # archlab train --references
    # (budget, data) of every recipe the study's trials were trained with (archlab train)
    trained_recipes: frozenset[tuple[str, str]] = frozenset()

    @property
    def record(self) -> StudyRecord | None:
        """The study's typed record, or None for a study not made by ``archlab search``."""
        return StudyRecord.from_attr(self.spec) if self.spec else None

    @property
    def target_ms(self) -> float | None:
        return None if self.record is None else self.record.settings.target_latency_s * 1e3

    @property
    def accuracy_metric(self) -> str | None:
        """The study's accuracy estimate: the first objective that is one (``naswot``,
        ``synflow``, ``grad_norm``, ``val_acc``), else the first such metric its trials carry."""
        objectives = self.record.settings.objective_names() if self.record else ()
        named = [OBJECTIVES[n].metric for n in objectives if n in OBJECTIVES]
        for metric in [*named, *ACCURACY_METRICS]:
            if metric in ACCURACY_METRICS and metric in self.trials:
                if self.trials[metric].notna().any():
                    return metric
        return None

    @property
    def knobs(self) -> list[str]:
        return [c.removeprefix("knob:") for c in self.trials.columns if c.startswith("knob:")]

    @property
    def measured(self) -> pd.DataFrame:
        """Trials with measured metrics (finished, feasible or not)."""
        if self.trials.empty:
            return self.trials
        return self.trials[self.trials["latency_ms"].notna()]

    def row(self, number: int) -> pd.Series:
        """The row of trial ``number``.

        Raises:
            KeyError: no such trial.
        """
        rows = self.trials[self.trials["number"] == number]
        if rows.empty:
            raise KeyError(f"no trial {number} in study {self.name!r}")
        return rows.iloc[0]


def _status(state: str, feasible: Any) -> str:
    if state == "COMPLETE":
        return "infeasible" if feasible is False else "feasible"
    return _STATE_STATUS.get(state, "running")


def _metric_names(study: optuna.Study) -> list[str]:
    return list(study.metric_names or [f"value{i}" for i in range(len(study.directions))])


def load_study_data(storage: BaseStorage, name: str) -> StudyData:
    """Read a study's spec and trials.

    Raises:
        StorageError: no study of that name.
    """
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise StorageError(f"no study {name!r} in this storage") from None
    frame = trials_frame(study)
    trials = study.get_trials(deepcopy=False, states=STARTED_STATES)  # the frame's rows
    if not frame.empty:
        frame["status"] = [_status(s, f) for s, f in zip(frame["state"], frame["feasible"])]
        frame["reason"] = [r if isinstance(r, str) and r else None for r in frame["reason"]]
        extra = [m for m in [*METRICS, "latency_runs"] if m not in frame]
        for key in extra:  # metrics trials_frame does not carry (other accuracy estimates)
            frame[key] = [t.user_attrs.get(key) for t in trials]
        frame["datetime_complete"] = [t.datetime_complete for t in trials]
        frame = with_trained_accuracy(frame, study)
    return StudyData(
        name=name,
        spec=dict(study.user_attrs.get(RECORD_ATTR) or {}),
        metric_names=_metric_names(study),
        directions=[d.name.lower() for d in study.directions],
        trials=frame,
        arch={t.number: dict(t.params) for t in trials},
        spec_reference=study.user_attrs.get("hypervolume_reference"),
        trained_references=trained_outcomes(study.user_attrs, TRAINED_REFERENCES_ATTR),
        trained_recipes=trained_recipes(trained_outcomes(study.user_attrs, TRAINED_ATTR)),
    )


def count_text(value: Any) -> str:
    """A whole number such as the timed runs, or '–' when the trial did not store it."""
    return "–" if value is None or pd.isna(value) else f"{float(value):.0f}"


def unplotted_note(trials: pd.DataFrame, x: str, y: str) -> str | None:
    """Which trials a chart of ``y`` against ``x`` leaves out, by status, and why: no
    measurements at all (e.g. failed), not trained (the trained-accuracy axis), or the axis
    they lack."""
    missing = trials[[x, y]].isna()
    left_out = trials[missing.any(axis=1)]
    if left_out.empty:
        return None

    def why(rows: pd.Index) -> str:
        lacking = [a for a in (x, y) if missing.loc[rows, a].all()]
        if len(lacking) == 2:
            return "no measurements"
        if lacking == [TRAINED]:
            return "not trained"
        return "no " + " or ".join(objective_label(a) for a in lacking or (x, y))

    parts = [
        f"{len(rows)} {status} ({why(rows.index)})" for status, rows in left_out.groupby("status")
    ]
    return "not plotted: " + ", ".join(parts)


def preset_label(row: Any) -> str:
    """A preset's name with its marks: * reconstructed config, † windows adapted."""
    return (
        str(row["preset"]) + ("*" if row["reconstructed"] else "") + ("†" if row["adapted"] else "")
    )


def preset_table(references: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """The measured presets for people: marked name, then each metric as every page writes it."""
    shown = {"published variant": [preset_label(r) for _, r in references.iterrows()]}
    for m in dict.fromkeys(metrics):
        if m in references:
            shown[objective_label(m)] = [fmt_metric(m, v) for v in references[m]]
    return pd.DataFrame(shown)


def environment_text(record: StudyRecord | None, what: str = "") -> str:
    """'224×224' and what follows it, or 'unknown' for a study without a record."""
    if record is None or record.resolution is None:
        return "unknown resolution"
    return f"{record.resolution}×{record.resolution}" + (f" {what}" if what else "")


def with_trained_references(
    references: pd.DataFrame, data: StudyData, evidence: Evidence | None = None
) -> pd.DataFrame:
    """The measured presets with their accuracy when trained like the trials, and where that
    figure comes from (``trained_accuracy_source``): the study's own reference training
    (``archlab train --references``), else archlab's ground truth if the study's trials were all
    trained with the recipe it used (the recipe is deterministic for a seed), else none."""
    out = references.copy()
    evidence = evidence if evidence is not None else load_evidence()
    found = [
        trained_reference(p, data.trained_references, data.trained_recipes, evidence)
        for p in out["preset"]
    ]
    out[TRAINED] = [f[0] if f else None for f in found]
    out[TRAINED_SOURCE] = [f[1] if f else None for f in found]
    return out


def study_space(data: StudyData) -> SearchSpace:
    """The study's search space, rebuilt from its record.

    Raises:
        ValueError: the study has no stored space (not created by ``archlab search``) or the
            stored space no longer loads (e.g. a family changed its config fields).
    """
    if data.record is None:
        raise ValueError(f"study {data.name!r} stores no space (not created by archlab search)")
    return data.record.space()


def trial_config(data: StudyData, number: int) -> dict[str, Any]:
    """The full config of trial ``number`` that ``archlab.build_model`` accepts.

    Raises:
        KeyError: no such trial.
    """
    if number not in data.arch:
        raise KeyError(f"no trial {number} in study {data.name!r}")
    return study_space(data).to_config(data.arch[number])


def build_trial_model(data: StudyData, number: int) -> nn.Module:
    """Build trial ``number``'s model as the search did (same seed), in eval mode.

    Raises:
        KeyError: no such trial. ValueError: its knobs form an impossible config (a pruned trial).
    """
    space = study_space(data)
    cfg = space.to_cfg(data.arch[number]) if number in data.arch else trial_config(data, number)
    torch.manual_seed(int(data.record.settings.seed or 0) if data.record else 0)
    return space.family.build(cfg).eval()


def trial_report(data: StudyData, number: int, model: nn.Module) -> ModelReport:
    """Per-stage and per-module params/MACs of a trial's model at the study's resolution.

    Latency is not measured again: the trial stores the search's measurement.
    """
    space = study_space(data)
    return model_report(
        model,
        space.family,
        f"{data.name} trial {number}",
        space.resolution,
        latency=False,
        breakdown=True,
    )


def trial_file_stem(data: StudyData, number: int) -> str:
    """A file name that says where the trial sits: ``<study>_trial3_4.2ms_0.15gmacs``."""
    row = data.row(number)
    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in data.name)
    parts = [safe, f"trial{number}"]
    if pd.notna(row.get("latency_ms")):
        parts.append(f"{row['latency_ms']:.1f}ms")
    if pd.notna(row.get("macs")):
        parts.append(f"{row['macs'] / 1e9:.2f}gmacs")
    return "_".join(parts)


def _latency_text(row: pd.Series) -> str:
    if pd.isna(row.get("latency_ms")):
        return "not measured"
    text = f"{row['latency_ms']:.2f} ms median"
    if pd.notna(row.get("latency_iqr_ms")):
        text += f", IQR {row['latency_iqr_ms']:.2f} ms"
    if pd.notna(row.get("latency_ci_rel")):
        text += f", 95% CI of the median ±{100 * row['latency_ci_rel']:.1f}%"
    if pd.notna(row.get("latency_runs")):
        text += f", {int(row['latency_runs'])} timed runs"
    return text


def trial_markdown(data: StudyData, number: int, report: ModelReport | None = None) -> str:
    """A Markdown report of one trial: metrics with the latency spread, config, module table."""
    row, record = data.row(number), data.record
    target = data.target_ms
    accuracy = data.accuracy_metric
    lines = [
        f"# {data.name}: trial {number}",
        "",
        f"- status: {row['status']}" + (f" ({row['reason']})" if row.get("reason") else ""),
        f"- space: {record.space_name if record else None} "
        f"(family {record.family if record else None}), {environment_text(record, 'input')}",
        f"- latency: {_latency_text(row)}"
        + (f"; target {target:.0f} ms" if target is not None else ""),
        f"- environment: {record.cpu if record else None}, "
        f"{record.settings.threads if record else None} thread(s), "
        f"torch {record.torch_version if record else None}",
        f"- {objective_label(accuracy)}: {fmt_metric(accuracy, row.get(accuracy))}"
        if accuracy
        else "- accuracy estimate: none recorded",
        *(f"- {objective_label(m)}: {fmt_metric(m, row.get(m))}" for m in _SIZES),
        "",
        "## Config",
        "",
        "```yaml",
        yaml.safe_dump(trial_config(data, number), sort_keys=False).rstrip(),
        "```",
    ]
    if report is not None:
        shown = markdown_table(fmt_module_table(report.modules))
        lines += ["", "## Modules (fvcore MACs with archlab handlers)", "", shown]
    return "\n".join(lines) + "\n"


def objective_label(metric: str, space: str | None = None) -> str:
    """Axis label of a metric (``latency_ms`` → 'latency (ms, median)'); with a ``space``, an
    accuracy estimate's label also states its measured rank agreement with real training there."""
    label = METRICS[metric][1] if metric in METRICS else _LABELS.get(metric, metric)
    if space is not None and metric in ACCURACY_METRICS and metric != "val_acc":
        label = f"{label} {axis_suffix(metric, space)}"
    return label
