"""Export a found architecture (a study's trial) or a preset as a self-contained folder.

The folder holds

- ``config.yaml``: the plain config; ``archlab.build_model("config.yaml")`` rebuilds the model;
- ``model.pt``: its state dict. The search is training-free, so these are the weights at
  initialisation, drawn with the study's seed: the very weights the trial was measured with;
- ``model.onnx``: TorchScript-based ONNX export (batch 1, the search resolution), checked with
  ``onnx.checker`` and by one ONNX Runtime forward pass against PyTorch (needs the ``onnx`` extra);
- ``report.md``: FLOP/param report (``archlab.report.tables.model_report``) and the measured latency
  with its environment.

A trial's default folder is named like a HAT pick, by where it sits:
``studies/<study>/picks/<family>@<latency>ms_<gmacs>gmacs/``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
import yaml
from torch import nn

from archlab.models import Family, Preset, build_model, config_of, find_preset
from archlab.models.pretrained import load_pretrained
from archlab.report.files import check_out_dir
from archlab.report.tables import ModelReport, fmt_module_table, markdown_table, model_report
from archlab.study.record import StudyRecord, load_record
from archlab.study.storage import home, load_study, study_dir

__all__ = [
    "EXPORTED_FILES",
    "ExportError",
    "ExportResult",
    "export_preset",
    "export_trial",
    "pick_name",
]

EXPORTED_FILES = ("config.yaml", "model.pt", "model.onnx", "report.md")
# ONNX Runtime vs PyTorch: |Δ| ≤ ATOL + RTOL·max|output| (float32 kernels sum in other orders).
ONNX_ATOL, ONNX_RTOL = 1e-4, 1e-3


class ExportError(ValueError):
    """A trial or preset that cannot be exported; the message says why."""


@dataclass
class ExportResult:
    """What was written, and what the checks found."""

    out: Path
    files: list[Path]
    params: int
    macs: int
    latency_ms: float | None
    onnx_max_abs_diff: float | None = None
    onnx_note: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class _Source:
    """Where the exported model comes from, for report.md."""

    title: str
    lines: list[str]
    latency: dict[str, Any] | None  # median_ms, iqr_ms, ci_rel, runs and environment
    objectives: dict[str, float] = field(default_factory=dict)
    weights: str | None = None  # where model.pt's weights come from; None: initialisation


def _short(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def pick_name(name: str, latency_ms: float | None, macs: int) -> str:
    """HAT-style folder name saying where a model sits: ``plgvit@12.3ms_0.45gmacs``."""
    gmacs = f"{_short(macs / 1e9)}gmacs"
    return f"{name}@{_short(latency_ms)}ms_{gmacs}" if latency_ms is not None else f"{name}_{gmacs}"


def _find_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    found = next((t for t in trials if t.number == number), None)
    if found is None:
        have = f"trials 0..{len(trials) - 1}" if trials else "no trials yet"
        raise ExportError(f"study {study.study_name!r} has no trial {number}; it has {have}")
    if found.state != optuna.trial.TrialState.COMPLETE:
        reason = found.user_attrs.get("fail_reason") or found.user_attrs.get("prune_reason")
        raise ExportError(
            f"trial {number} of study {study.study_name!r} is {found.state.name}"
            + (f" ({reason})" if reason else "")
            + "; only complete trials can be exported"
        )
    return found


def _trial_latency(trial: optuna.trial.FrozenTrial, record: StudyRecord) -> dict[str, Any]:
    attrs = trial.user_attrs
    return {
        "median_ms": attrs.get("latency_ms"),
        "iqr_ms": attrs.get("latency_iqr_ms"),
        "ci_rel": attrs.get("latency_ci_rel"),
        "runs": attrs.get("latency_runs"),
        "env": {
            "cpu": record.cpu,
            "threads": record.settings.threads,
            "batch": 1,
            "backend": "eager",
            "torch_version": record.torch_version,
        },
    }


def export_trial(
    study_name: str,
    trial_number: int,
    out: Path | None = None,
    storage: str | None = None,
    onnx: bool = True,
    force: bool = False,
) -> ExportResult:
    """Export a complete trial of a study (its arch is ``trial.params``).

    Raises:
        StorageError: no such study.
        ExportError: no such trial, or it is not complete; ONNX export or its check failed.
        OverwriteError: ``out`` already holds exported files and ``force`` is False.

    Example:
        >>> from archlab.report.export import export_trial
        >>> result = export_trial("plgvit@1000ms", 3)  # doctest: +SKIP
        >>> sorted(p.name for p in result.files)  # doctest: +SKIP
        ['config.yaml', 'model.onnx', 'model.pt', 'report.md']
    """
    study = load_study(study_name, storage)
    record = load_record(study)
    trial = _find_trial(study, trial_number)
    space = record.space()
    seed = record.settings.seed
    torch.manual_seed(0 if seed is None else seed)  # as archlab.search.evaluate.evaluate_arch does
    model = space.family.build(space.to_cfg(trial.params)).eval()
    latency = _trial_latency(trial, record)
    if out is None:
        pick = pick_name(space.family.name, latency["median_ms"], trial.user_attrs.get("macs", 0))
        out = study_dir(study_name) / "picks" / pick
    names = study.metric_names or [f"value{i}" for i in range(len(trial.values))]
    source = _Source(
        title=f"{study_name} — trial {trial.number}",
        lines=[
            f"Study `{study_name}`, trial {trial.number} (space `{record.space_name}`, "
            f"target {record.settings.target_latency_s * 1e3:g} ms, seed {seed}).",
            f"Architecture (`trial.params`): `{dict(trial.params)}`.",
        ],
        latency=latency,
        objectives=dict(zip(names, trial.values)),
    )
    return _export(model, space.family, space.resolution, out, source, onnx, seed, force=force)


def export_preset(
    name: str,
    out: Path | None = None,
    resolution: int | None = None,
    latency: bool = True,
    onnx: bool = True,
    force: bool = False,
    weights: Path | None = None,
) -> ExportResult:
    """Export a preset, measuring its latency here.

    The weights are those at initialisation with seed 0, or, with ``weights``, a checkpoint saved
    by the authors' released code (``archlab.models.pretrained.load_pretrained``).

    Raises:
        KeyError: unknown preset; the message lists the known ones.
        ValueError: the preset cannot run at ``resolution``, or the checkpoint does not fit.
        ExportError: ONNX export or its check failed.
        OverwriteError: ``out`` already holds exported files and ``force`` is False.
    """
    family, key, preset = find_preset(name)
    if out is not None:  # refused before the latency is measured
        check_out_dir(out, EXPORTED_FILES, force)
    res = resolution or preset.resolution
    torch.manual_seed(0)
    model = family.build(preset.cfg).eval()
    if weights is not None:
        load_pretrained(model, weights, source="official")
    rep = model_report(model, family, key, res, preset=preset, latency=latency, depth=2)
    lat = None if rep.latency is None else _latency_dict(rep)
    if out is None:
        median_ms = None if lat is None else lat["median_ms"]
        out = home() / "presets" / pick_name(key, median_ms, rep.macs)
    lines = _preset_lines(family, key, preset)
    source = _Source(f"preset {key}", lines, lat, weights=None if weights is None else str(weights))
    return _export(model, family, res, out, source, onnx, 0, rep, force=force)


def _latency_dict(rep: ModelReport) -> dict[str, Any]:
    lat = rep.latency.as_dict()  # type: ignore[union-attr]
    return {k: lat[k] for k in ("median_ms", "iqr_ms", "ci_rel", "runs", "env")}


def _preset_lines(family: Family, key: str, preset: Preset) -> list[str]:
    lines = [f"Preset `{key}` of family `{family.name}` ({family.title}; {family.paper})."]
    if preset.published:
        lines.append(
            f"Published as {preset.published}"
            + (
                " (reconstructed config: the published layer table is unknown)."
                if preset.reconstructed
                else "."
            )
        )
    return lines


def _export(
    model: nn.Module,
    family: Family,
    resolution: int,
    out: Path,
    source: _Source,
    onnx: bool,
    seed: int | None,
    rep: ModelReport | None = None,
    *,
    force: bool = False,
) -> ExportResult:
    check_out_dir(out, EXPORTED_FILES, force)
    out.mkdir(parents=True, exist_ok=True)
    config = config_of(model, family.name)
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    torch.save(model.state_dict(), out / "model.pt")
    _check_rebuild(model, out, resolution)
    files = [out / "config.yaml", out / "model.pt"]
    diff, note = None, "not exported (--no-onnx)"
    if onnx:
        diff, note = _export_onnx(model, out / "model.onnx", resolution)
        if diff is not None:
            files.append(out / "model.onnx")
    if rep is None:
        rep = model_report(model, family, source.title, resolution, latency=False, depth=2)
    report = _render_report(rep, source, config, note, seed)
    (out / "report.md").write_text(report)
    files.append(out / "report.md")
    lat = None if source.latency is None else source.latency["median_ms"]
    return ExportResult(out, files, rep.params, rep.macs, lat, diff, note)


def _probe(resolution: int) -> torch.Tensor:
    return torch.randn(1, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))


def _check_rebuild(model: nn.Module, out: Path, resolution: int) -> None:
    """The written config and weights must rebuild a model with the same output."""
    rebuilt = build_model(out / "config.yaml").eval()
    rebuilt.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    x = _probe(resolution)
    with torch.inference_mode():
        same = torch.equal(model(x), rebuilt(x))
    if not same:
        raise ExportError(f"{out / 'config.yaml'} does not rebuild the same model; please report")


def _export_onnx(model: nn.Module, path: Path, resolution: int) -> tuple[float | None, str]:
    """Export, check and compare; returns (max |ONNX − PyTorch|, a note for the report)."""
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        return None, (
            f"not exported: the `{err.name}` package is missing; install the onnx "
            "extra (pip install 'archlab[onnx]') to export and check model.onnx"
        )
    x = _probe(resolution)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and legacy-exporter warnings
            torch.onnx.export(
                model, (x,), str(path), dynamo=False, input_names=["image"], output_names=["logits"]
            )
        onnx.checker.check_model(onnx.load(str(path)))
    except Exception as err:  # exporter and checker raise many types; all mean "no valid ONNX"
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ExportError(
            f"ONNX export failed ({type(err).__name__}: {first[:300]}); "
            f"config.yaml and model.pt in {path.parent} are written"
        ) from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    with torch.inference_mode():
        want = model(x).numpy()
    diff = float(np.abs(got - want).max())
    tolerance = ONNX_ATOL + ONNX_RTOL * float(np.abs(want).max())
    if not diff <= tolerance:
        raise ExportError(
            f"{path}: ONNX Runtime output differs from PyTorch by {diff:.2e} "
            f"(tolerance {tolerance:.1e}); the file is kept for inspection"
        )
    return diff, (
        f"`onnx.checker` passes; ONNX Runtime matches PyTorch within {tolerance:.1e} "
        f"(max |Δ| {diff:.1e}; input `image` 1×3×{resolution}×{resolution}, "
        "output `logits`)."
    )


def _latency_md(latency: dict[str, Any] | None) -> list[str]:
    if latency is None or latency.get("median_ms") is None:
        return ["Not measured."]
    env = ", ".join(f"{k} {v}" for k, v in (latency.get("env") or {}).items() if v is not None)
    ci = latency.get("ci_rel")
    return [
        f"Median **{latency['median_ms']:.2f} ms** (IQR {latency.get('iqr_ms') or 0:.2f} ms"
        + (f", 95% CI ±{100 * ci:.1f}%" if ci is not None else "")
        + f", {latency.get('runs')} runs), eager PyTorch, `torch.inference_mode()`.",
        "",
        f"Environment: {env}.",
    ]


def _render_report(
    rep: ModelReport, source: _Source, config: dict[str, Any], onnx_note: str, seed: int | None
) -> str:
    zero = (
        ", ".join(
            f"{k.removeprefix('aten::')}×{v}" for k, v in sorted(rep.convention_zero_ops.items())
        )
        or "none"
    )
    lines = [
        f"# {source.title}",
        "",
        *source.lines,
        "",
        "## Files",
        "",
        '- `config.yaml`: `archlab.build_model("config.yaml")` rebuilds this model.',
        f"- `model.pt`: state dict: weights at initialisation (seed {seed}), not trained."
        if source.weights is None
        else f"- `model.pt`: state dict: the official checkpoint `{source.weights}`, renamed.",
        f"- `model.onnx`: {onnx_note}",
        "",
        f"## Cost at {rep.resolution}×{rep.resolution}",
        "",
        "| params | MACs | FLOPs (2 × MACs) | thop MACs |",
        "|---|---|---|---|",
        f"| {rep.params:,} | {rep.macs:,} | {2 * rep.macs:,} | {rep.thop_macs:,} |",
        "",
        "MACs: fvcore with archlab's handlers (one multiply-add = 1). "
        f"0 MACs by convention (element-wise): {zero}.",
        "",
        "## Measured latency",
        "",
        *_latency_md(source.latency),
        "",
    ]
    if source.objectives:
        lines += [
            "## Objectives",
            "",
            *(f"- {k}: {v:.6g}" for k, v in source.objectives.items()),
            "",
        ]
    lines += [
        "## Per-module params and MACs",
        "",
        markdown_table(fmt_module_table(rep.modules)),
        "",
        "## Config",
        "",
        "```yaml",
        yaml.safe_dump(config, sort_keys=False).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)
