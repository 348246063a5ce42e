"""The published variants (presets) of a study's family, measured like its trials.

Each preset is built, counted and timed by :func:`archlab.search.evaluate.evaluate_arch` with the
study's own settings (resolution, threads, seed, accuracy estimates, latency time cap), so its
marker on the Pareto chart is comparable with the trials. A study searched at another resolution
than the preset's published one gets the preset adapted to it by
:func:`archlab.estimate.reduced.reduce_cfg` (the same adaptation the search's accuracy estimates
use: windows scaled with the input, widths and depths unchanged), flagged ``adapted``. A preset that
still cannot run is skipped with the reason. Short training is never run for presets (their
``val_acc`` stays empty): it would cost minutes per preset.

Results are cached per preset in ``references.json`` in the study's output folder, keyed on
everything the figures depend on (CPU, torch version, settings, the preset's config), so each
preset is measured once per machine.

Example:
    >>> from archlab.search.references import measure_references
    >>> spec = {"family": "plgvit", "resolution": 64, "objectives": ["naswot", "latency"]}
    >>> refs = measure_references(spec, "/tmp/refs", names=["lw_plgvit_r"])
    >>> refs.measured["lw_plgvit_r"]["adapted"]  # windows scaled from 224 to 64 px
    True
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from archlab.estimate.reduced import reduce_cfg
from archlab.measurement.latency import cpu_model
from archlab.models import Preset, cfg_to_dict, get_family
from archlab.search.evaluate import evaluate_arch
from archlab.space import SearchSpace
from archlab.study.record import StudyRecord
from archlab.study.settings import SearchSpec

__all__ = ["CACHE_NAME", "References", "cached_references", "measure_references"]

CACHE_NAME = "references.json"
_SETTINGS = (
    "threads", "seed", "proxy_batch", "proxy_resolution", "proxy_data", "latency_max_time_s"
)  # fmt: skip
_KEPT = (
    "params",
    "macs",
    "latency_ms",
    "latency_iqr_ms",
    "latency_ci_rel",
    "latency_runs",
    "peak_memory_bytes",
    "activations_peak_bytes",
    "naswot",
    "synflow",
    "grad_norm",
    "zico",
    "swap",
    "meco",
    "val_acc",
    "tse_1_64",
    "train_1_8",
    "train_1_4",
)
# Objectives whose estimate presets do not get: a preset is not a knob setting of the space, so
# the knob model has nothing to read.
_NOT_FOR_PRESETS = ("short_train", "knob_ridge")
_FILLERS = ("latency", "macs", "params")  # cost objectives: free, keep a valid objective list


@dataclass
class References:
    """Measured presets (name → metrics) and skipped ones (name → reason)."""

    measured: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        """One row per measured preset: name, published variant, reconstructed flag, metrics."""
        rows = [{"preset": name, **values} for name, values in self.measured.items()]
        return pd.DataFrame(
            rows, columns=["preset", "published", "reconstructed", "adapted", *_KEPT]
        )


def _record(study: StudyRecord | dict[str, Any]) -> StudyRecord:
    """A study's record; a plain dict (the stored attribute, or part of it) is read as one."""
    return study if isinstance(study, StudyRecord) else StudyRecord.from_attr(study)


def _family(record: StudyRecord) -> str:
    if not record.family:
        raise KeyError(f"study {record.study_name!r} names no model family")
    return record.family


def _resolution(record: StudyRecord) -> int:
    if not record.resolution:
        raise KeyError(f"study {record.study_name!r} records no input resolution")
    return int(record.resolution)


def _objectives(record: StudyRecord) -> tuple[str, ...]:
    """The study's objectives without short training, padded with cost objectives to two."""
    names = [o for o in record.settings.objective_names() if o not in _NOT_FOR_PRESETS]
    for filler in _FILLERS:
        if len(names) < 2 and filler not in names:
            names.append(filler)
    return tuple(names)


def _spec_of(record: StudyRecord) -> SearchSpec:
    settings = {k: getattr(record.settings, k) for k in _SETTINGS}
    return SearchSpec(objectives=_objectives(record), **settings)


def _key(record: StudyRecord) -> dict[str, Any]:
    spec = _spec_of(record)
    return {
        "family": _family(record),
        "resolution": _resolution(record),
        "objectives": list(spec.objective_names()),
        **{k: getattr(spec, k) for k in _SETTINGS if hasattr(spec, k)},
        "cpu": cpu_model(),
        "torch_version": str(torch.__version__),
        "kept": list(_KEPT),  # a cache that lacks a metric kept now is measured again
    }


def _read(path: Path, key: dict[str, Any]) -> dict[str, Any]:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return stored.get("presets", {}) if stored.get("key") == key else {}


def _write(path: Path, key: dict[str, Any], presets: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "presets": presets}, indent=1, default=str))
    tmp.replace(path)  # atomic: a reader never sees half a file


def _adapted(family: str, preset: Preset, resolution: int) -> dict[str, Any] | str:
    """The preset's config at ``resolution`` (adapted if needed), or why it cannot run there."""
    try:
        return cfg_to_dict(reduce_cfg(family, preset.cfg, resolution, preset.resolution), family)
    except ValueError as err:
        return str(err)


def _entries(record: StudyRecord) -> dict[str, tuple[Preset, dict[str, Any] | str]]:
    family = get_family(_family(record))
    resolution = _resolution(record)
    return {
        name: (preset, _adapted(family.name, preset, resolution))
        for name, preset in family.presets.items()
    }


def _split(record: StudyRecord, stored: dict[str, Any]) -> References:
    refs = References()
    resolution = _resolution(record)
    for name, (preset, config) in _entries(record).items():
        entry = stored.get(name)
        if isinstance(config, str):  # cannot run at this resolution even adapted
            refs.skipped[name] = config
        elif entry is None or entry.get("config") != config:
            refs.missing.append(name)
        elif "skipped" in entry:
            refs.skipped[name] = entry["skipped"]
        else:
            refs.measured[name] = {
                "published": preset.published,
                "reconstructed": preset.reconstructed,
                "adapted": preset.resolution != resolution,
                **{k: entry.get(k) for k in _KEPT},
            }
    return refs


def cached_references(study: StudyRecord | dict[str, Any], out_dir: str | Path) -> References:
    """What is already measured for this study's family and settings (nothing is measured).

    Raises:
        KeyError: the record names no known family.
    """
    record = _record(study)
    return _split(record, _read(Path(out_dir) / CACHE_NAME, _key(record)))


def _measure_one(name: str, config: dict[str, Any], record: StudyRecord) -> dict[str, Any]:
    family = get_family(_family(record))
    resolution = _resolution(record)
    space = SearchSpace(name, family, {}, config, resolution)
    try:
        metrics = evaluate_arch(space, {}, _spec_of(record), resolution)
    except ValueError as err:  # cannot run at this resolution (or an invalid config)
        return {"config": config, "skipped": str(err)}
    except Exception as err:  # a crash is a reason to skip, not to break the dashboard
        return {"config": config, "skipped": f"{type(err).__name__}: {err}"}
    return {"config": config, **{k: metrics.get(k) for k in _KEPT}}


def measure_references(
    study: StudyRecord | dict[str, Any],
    out_dir: str | Path,
    names: list[str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> References:
    """Measure the presets of the study's family not yet in the cache, then return them all.

    Args:
        study: the study's record, or its stored dict (``family``, ``resolution``,
            ``objectives`` and the measurement settings ``threads``, ``seed``, ``proxy_batch``,
            ``proxy_resolution``, ``proxy_data``, ``latency_max_time_s``; missing ones take their
            defaults, the probe settings those of a study older than them).
        out_dir: the study's output folder; the cache is ``references.json`` there.
        names: measure only these presets (default: every missing one).
        progress: called as ``progress(done, total, preset)`` before each measurement.

    Raises:
        KeyError: the spec names no known family, or ``names`` holds a preset not in it.
    """
    record = _record(study)
    key, path = _key(record), Path(out_dir) / CACHE_NAME
    stored = _read(path, key)
    entries = _entries(record)
    unknown = sorted(set(names or []) - set(entries))
    if unknown:
        raise KeyError(
            f"no preset(s) {unknown} in family {record.family!r}; presets: {list(entries)}"
        )
    todo = [n for n in _split(record, stored).missing if names is None or n in names]
    for i, name in enumerate(todo):
        if progress is not None:
            progress(i, len(todo), name)
        stored[name] = _measure_one(name, entries[name][1], record)  # type: ignore[arg-type]
        _write(path, key, stored)  # after each preset: an interrupted run resumes
    return _split(record, stored)
