"""One candidate, built and measured: the evaluation behind every trial and every preset.

:func:`evaluate_arch` counts parameters and MACs, records the peak memory, computes the accuracy
estimates the objectives ask for (on the arch reduced to the probe resolution) and measures or
predicts the latency. The search loop stores its result on the trial; the dashboard's references
measure published variants with it, so both are figures of one procedure.
"""

from __future__ import annotations

from typing import Any

import torch

from archlab.estimate.arch_estimates import trained_estimate
from archlab.estimate.estimates import ESTIMATES, estimate_accuracy
from archlab.estimate.evidence import TRAINED_ESTIMATES
from archlab.estimate.surrogate import FITTED_ESTIMATE, predict_for_space
from archlab.estimate.training import Progress, TrainSpec
from archlab.measurement.fast_macs import BlockCount, UncountedOpError, count_macs_with_blocks
from archlab.measurement.flops import MacCount, count_macs, count_params
from archlab.measurement.latency import measure_latency, torch_threads
from archlab.measurement.memory import memory_use, peak_memory
from archlab.predict.predictor import LatencyPredictor
from archlab.space import SearchSpace
from archlab.study.objectives import get_objectives
from archlab.study.settings import SearchError, SearchSpec

__all__ = ["evaluate_arch", "latency_predictor", "metric", "train_spec"]


def train_spec(spec: SearchSpec, resolution: int) -> TrainSpec:
    """The short-training budget of a search (its data at the proxy resolution)."""
    return TrainSpec(
        steps=spec.train_steps,
        batch=spec.train_batch,
        resolution=min(spec.probe_resolution(), resolution),
        time_limit_s=spec.train_time_limit_s,
        seed=0 if spec.seed is None else spec.seed,
        data=spec.data,
    )


def _estimates(
    space: SearchSpace,
    arch: dict[str, Any],
    spec: SearchSpec,
    resolution: int,
    progress: Progress | None,
) -> dict[str, Any]:
    """The accuracy estimates the objectives read, on the arch reduced to the proxy resolution;
    ``train_1_8``/``train_1_4`` and ``tse_1_64`` are the reference recipe cut short, exactly as
    the evidence ran them (its resolution, budget and seed; no time limit, so a slow machine
    changes no figure)."""
    metrics = [o.metric for o in get_objectives(spec.objective_names())]
    out = estimate_accuracy(
        space,
        arch,
        [m for m in metrics if m in ESTIMATES],
        resolution=min(spec.probe_resolution(), resolution),
        proxy_batch=spec.proxy_batch,
        seed=0 if spec.seed is None else spec.seed,
        train=train_spec(spec, resolution),
        progress=progress,
        data=spec.probe_data(),
    )
    if FITTED_ESTIMATE in metrics:
        out[FITTED_ESTIMATE] = predict_for_space(space.name, space.knobs, space.default(), arch)
    for name in (m for m in metrics if m in TRAINED_ESTIMATES):
        out[name], _ = trained_estimate(space, arch, name, spec.probe_data(), progress)
    return out


def evaluate_arch(
    space: SearchSpace,
    arch: dict[str, Any],
    spec: SearchSpec,
    resolution: int,
    progress: Progress | None = None,
    predictor: LatencyPredictor | None = None,
) -> dict[str, Any]:
    """Build and measure one arch; returns its metrics (costs, latency, the estimates asked for).

    With a ``predictor`` the latency is predicted (``latency_ms_predicted``) instead of measured.
    """
    cfg = space.to_cfg(arch)
    torch.manual_seed(0 if spec.seed is None else spec.seed)
    model = space.family.build(cfg).eval()
    # count_macs' total without its JIT trace. The fast count raises on any op it has no entry
    # for, so one that returns leaves no op unsupported; else the reference counts and lists it.
    # In predicted mode the same pass finds the blocks the predictor looks up.
    # The same pass records the peak memory, at the spec's thread count.
    counted: MacCount | BlockCount
    try:
        with torch_threads(spec.threads):
            counted = count_macs_with_blocks(
                model, resolution, blocks=predictor is not None, memory=True
            )
        assert counted.activations_peak_bytes is not None  # asked for
        memory = memory_use(model, counted.input_bytes, counted.activations_peak_bytes)
        unsupported: dict[str, int] = {}
    except UncountedOpError:
        counted = count_macs(model, resolution)
        unsupported = counted.unsupported_ops
        memory = peak_memory(model, resolution, threads=spec.threads, warm=True)
    return {
        "params": count_params(model),
        "macs": counted.total,
        **_estimates(space, arch, spec, resolution, progress),
        **_latency_metrics(model, resolution, spec, counted, predictor),
        "peak_memory_bytes": memory.peak_bytes,
        "activations_peak_bytes": memory.activations_peak_bytes,
        "unsupported_ops": unsupported,
    }


def _latency_metrics(
    model: torch.nn.Module,
    resolution: int,
    spec: SearchSpec,
    macs: MacCount | BlockCount,
    predictor: LatencyPredictor | None,
) -> dict[str, Any]:
    if predictor is not None:
        pred = predictor.predict(model, resolution, macs)
        return {
            "latency_ms_predicted": pred.latency_ms,
            "latency_blocks_measured_on_demand": pred.measured_on_demand,
            "latency_blocks_estimated": pred.estimated,
        }
    latency = measure_latency(
        model,
        resolution,
        threads=spec.threads,
        max_time_s=spec.latency_max_time_s,
        backend=spec.backend,
    )
    return {
        "latency_ms": latency.median_ms,
        "latency_iqr_ms": latency.iqr_ms,
        "latency_ci_rel": latency.ci_rel,
        "latency_runs": latency.runs,
        "latency_contaminated_slices": latency.contaminated_slices,
    }


def metric(metrics: dict[str, Any], name: str) -> Any:
    """A metric, or its predicted stand-in (``latency_ms`` → ``latency_ms_predicted``)."""
    return metrics[name] if name in metrics else metrics[f"{name}_predicted"]


def latency_predictor(spec: SearchSpec) -> LatencyPredictor | None:
    if spec.latency_mode == "measured":
        return None
    if spec.latency_mode != "predicted":
        raise SearchError(
            f"unknown latency mode {spec.latency_mode!r}; choose measured or predicted"
        )
    if not spec.latency_model:
        raise SearchError(
            "--latency predicted needs --latency-model PROFILE.json "
            "(made by archlab profile-device)"
        )
    choices = {"auto": None, "measure": True, "estimate": False}
    if spec.unseen_blocks not in choices:
        raise SearchError(
            f"unknown unseen-blocks policy {spec.unseen_blocks!r}; choose auto, measure or estimate"
        )
    return LatencyPredictor(spec.latency_model, on_demand=choices[spec.unseen_blocks])
