"""Eager, TorchScript and ONNX Runtime (float and int8) side by side: speed, ranking and fronts.

For each space (``--spaces``, default all of ``search_spaces/``), the presets of its family and
``--archs`` random archs of the space (the first valid ones from seed 0 on, as
``SearchSpace.random_valid`` draws them), all at the space's resolution and with the weights of
seed 0, run under four runtimes:

* ``eager``: PyTorch, the module itself;
* ``torchscript``: ``torch.jit.trace`` then ``torch.jit.freeze`` (the ``torchscript`` backend);
  where tracing fails or its output differs from eager, ``torch.jit.script`` then freeze. The
  column ``torchscript_via`` says which;
* ``onnxruntime`` and ``onnxruntime-int8``: the ONNX Runtime backends, float and with the linear
  layers' weights in int8 (ONNX Runtime's dynamic quantisation,
  :mod:`archlab.measurement.onnx_runtime`).

Every runner is built by :func:`archlab.measurement.backends.prepare`, as ``--backend`` builds
it. All models × runtimes of a space are timed in one interleaved run
(:func:`archlab.measurement.interleave.interleaved_times`, 1 thread): 3 warm-up passes each, then
``--rounds`` rounds, each running 2 passes of every runner in turn (the order rotates from round to
round), each round guarded against other processes' CPU use. A model's latency under a runtime is
the median of its passes; a model and its runtimes thus see the same moments of the machine. The
int8 model's top-1 agreement with the float one is measured on ``--images`` random images (seed 0,
one at a time; :func:`archlab.measurement.onnx_runtime.int8_agreement`).

Printed per space (= family):

* per runtime, the geometric mean over the space's models of its latency divided by eager's, with
  the range;
* Spearman ρ between each runtime's latencies and eager's, over the random archs and over all
  models (presets too);
* the int8 speed-up over ONNX Runtime float (geometric mean, range) and the int8 top-1 agreement;
* does the front found with eager stay the front? The Pareto front of latency (lower is better)
  against params and against MACs (higher is better: stand-ins for accuracy, which is not measured
  here) under eager and under each runtime, and the share of the eager front's members still on
  the runtime's front.

``--out CSV`` writes one row per model as each space finishes; rerun with the same ``--out``, the
spaces whose models are all in the file are read back instead of measured, so an interrupted run
resumes at the space it stopped in.

Figures only mean something on a quiet machine (the load average is printed). Run:
``.venv/bin/python bench/runtimes.py [--spaces plgvit,parc] [--archs 20] [--rounds 20]
[--presets-only] [--out bench/results/runtimes.csv]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import onnxruntime
import torch
from scipy.stats import spearmanr
from torch import nn

from archlab.measurement.backends import Runner, prepare
from archlab.measurement.contention import ContentionGuard, describe_steal, machine_ticks
from archlab.measurement.fast_macs import UncountedOpError, count_macs_fast
from archlab.measurement.flops import count_macs, count_params
from archlab.measurement.interleave import interleaved_times
from archlab.measurement.latency import cpu_model, torch_threads
from archlab.measurement.onnx_runtime import int8_agreement
from archlab.space import SearchSpace, list_spaces, load_space

RUNTIMES = ("eager", "torchscript", "onnxruntime", "onnxruntime-int8")
RUNS_PER_SLICE = 2
WARMUP = 3
nan = float("nan")


def _key(runtime: str) -> str:
    return runtime.replace("-", "_")


COLUMNS = [
    "space", "kind", "name", "resolution", "params", "macs", "torchscript_via",
    *(f"{_key(r)}_{field}" for r in RUNTIMES for field in ("ms", "iqr_ms", "error")),
    "int8_top1_agreement", "int8_float_classes", "int8_centred_top1_agreement",
    "int8_logits_rel_error", "int8_image_dependence", "int8_images", "rounds", "runs_per_slice",
    "reruns", "contaminated_rounds", "threads", "cpu", "torch", "onnxruntime", "date", "arch",
]  # fmt: skip


@dataclass(frozen=True)
class Candidate:
    """One model of a space: a preset of its family or a random arch."""

    kind: str  # "preset" or "arch"
    name: str  # the preset's key, or arch_s<seed>
    cfg: Any  # the family's config dataclass
    arch: dict[str, Any] | None = None  # trial.params of a random arch


def candidates(space: SearchSpace, archs: int) -> list[Candidate]:
    """The presets of the space's family that run at its resolution, then ``archs`` random archs."""
    found = []
    for key, preset in space.family.presets.items():
        check = getattr(preset.cfg, "check_resolution", None)
        try:
            if check is not None:
                check(space.resolution)
        except ValueError as err:
            print(f"  {key}: left out, cannot run at {space.resolution} px ({err})")
            continue
        found.append(Candidate("preset", key, preset.cfg))
    seed, drawn = 0, 0
    while drawn < archs and seed < 100 * max(archs, 1):
        arch = space.sample(seed)
        try:
            found.append(Candidate("arch", f"arch_s{seed}", space.to_cfg(arch), arch))
            drawn += 1
        except ValueError:
            pass
        seed += 1
    return found


def _reason(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:160]


def _close(a: Any, b: torch.Tensor) -> bool:
    return bool(torch.allclose(torch.as_tensor(a), b, rtol=1e-3, atol=1e-4))


def _torchscript(
    model: nn.Module, example: torch.Tensor, expected: torch.Tensor
) -> tuple[Runner, str]:
    """The ``torchscript`` backend's runner, or a scripted one where tracing fails or differs."""
    try:
        run = prepare(model, example, "torchscript")
        with torch.inference_mode():
            got = run()
    except Exception as err:  # the tracer raises many types
        why = f"trace failed: {_reason(err)}"
    else:
        if _close(got, expected):
            return run, "trace"
        why = "trace differs from eager"
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frozen = torch.jit.freeze(torch.jit.script(model))
    except Exception as err:  # the scripting compiler raises many types
        raise ValueError(f"{why}; script failed: {_reason(err)}") from None
    return (lambda: frozen(example)), f"script ({why})"


def _runners(
    model: nn.Module, example: torch.Tensor
) -> tuple[dict[str, Runner], dict[str, str], str]:
    """Each runtime's runner, the runtimes that failed with their reason, how TorchScript ran."""
    with torch.inference_mode():
        expected = model(example)
    runners: dict[str, Runner] = {"eager": prepare(model, example, "eager")}
    errors: dict[str, str] = {}
    via = ""
    try:
        runners["torchscript"], via = _torchscript(model, example, expected)
    except ValueError as err:
        errors["torchscript"] = str(err)
    for backend in ("onnxruntime", "onnxruntime-int8"):
        try:
            runners[backend] = prepare(model, example, backend)
        except ValueError as err:
            errors[backend] = str(err)
    return runners, errors, via


def _macs(model: nn.Module, resolution: int) -> int:
    try:
        return count_macs_fast(model, resolution)
    except UncountedOpError:
        return count_macs(model, resolution).total


def _prepare_row(
    space: SearchSpace, cand: Candidate, example: torch.Tensor, images: int
) -> tuple[dict[str, Any], dict[str, Runner]]:
    torch.manual_seed(0)
    model = space.family.build(cand.cfg).eval()
    row: dict[str, Any] = {
        "space": space.name, "kind": cand.kind, "name": cand.name,
        "resolution": space.resolution, "params": count_params(model),
        "macs": _macs(model, space.resolution),
        "arch": json.dumps(cand.arch, sort_keys=True) if cand.arch is not None else "",
    }  # fmt: skip
    runners, errors, row["torchscript_via"] = _runners(model, example)
    for runtime, reason in errors.items():
        row[f"{_key(runtime)}_error"] = reason
        print(f"  {cand.name}: no {runtime}: {reason}")
    if "onnxruntime-int8" in runners:
        found = int8_agreement(model, space.resolution, images=images)
        row.update(
            int8_top1_agreement=found.top1_agreement,
            int8_float_classes=found.float_classes,
            int8_centred_top1_agreement=found.centred_top1_agreement,
            int8_logits_rel_error=found.logits_rel_error,
            int8_image_dependence=found.image_dependence,
            int8_images=found.images,
        )
    return row, runners


def measure_space(
    space: SearchSpace, cands: Sequence[Candidate], rounds: int, images: int, guard: bool
) -> list[dict[str, Any]]:
    """Prepare every candidate under every runtime, then time them all in one interleaved run."""
    res = space.resolution
    example = torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(0))
    rows: list[dict[str, Any]] = []
    slots: list[tuple[int, str, Runner]] = []  # (row index, runtime, runner)
    with torch_threads(1):
        for cand in cands:
            start = time.perf_counter()
            try:
                row, runners = _prepare_row(space, cand, example, images)
            except (RuntimeError, ValueError) as err:  # the model itself does not run
                print(f"  {cand.name}: left out: {_reason(err)}")
                continue
            slots += [(len(rows), runtime, run) for runtime, run in runners.items()]
            rows.append(row)
            print(f"  prepared {cand.name} ({time.perf_counter() - start:.0f} s)", flush=True)
        checker = ContentionGuard(1, enabled=guard)
        start = time.perf_counter()
        times = interleaved_times(
            [s[2] for s in slots], checker, rounds, RUNS_PER_SLICE, WARMUP, 0.0
        )
        print(
            f"  timed {len(slots)} runners in {rounds} rounds ({time.perf_counter() - start:.0f} "
            f"s; {checker.reruns} rounds run again, {checker.contaminated} kept although disturbed "
            "by other processes)"
        )
    for (i, runtime, _), passes in zip(slots, times):
        quartiles = statistics.quantiles(passes, n=4)
        rows[i][f"{_key(runtime)}_ms"] = statistics.median(passes)
        rows[i][f"{_key(runtime)}_iqr_ms"] = quartiles[2] - quartiles[0]
    context = {
        "rounds": rounds, "runs_per_slice": RUNS_PER_SLICE, "reruns": checker.reruns,
        "contaminated_rounds": checker.contaminated, "threads": 1, "cpu": cpu_model(),
        "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
        "date": date.today().isoformat(),
    }  # fmt: skip
    return [{**row, **context} for row in rows]


# --- summaries ---------------------------------------------------------------------------------


def _value(row: dict[str, Any], column: str) -> float:
    text = row.get(column, "")
    return float(text) if text not in ("", None) else nan


def _pairs(rows: list[dict[str, Any]], runtime: str) -> list[tuple[dict[str, Any], float, float]]:
    """(row, eager ms, runtime ms) of the rows timed under both."""
    out = []
    for row in rows:
        eager, other = _value(row, "eager_ms"), _value(row, f"{_key(runtime)}_ms")
        if math.isfinite(eager) and math.isfinite(other):
            out.append((row, eager, other))
    return out


def _gmean_range(ratios: list[float]) -> str:
    if not ratios:
        return "–"
    return f"{statistics.geometric_mean(ratios):.2f}x [{min(ratios):.2f}–{max(ratios):.2f}]"


def _rho(xs: list[float], ys: list[float]) -> str:
    return f"{spearmanr(xs, ys).statistic:+.3f} (n={len(xs)})" if len(xs) >= 3 else "–"


def pareto_front(latency: list[float], size: list[float]) -> set[int]:
    """Indices not dominated by another point with lower-or-equal latency and at least the same
    size, one of the two strictly better."""
    points = list(zip(latency, size))
    return {
        i
        for i, (lat, sz) in enumerate(points)
        if not any(
            (lo <= lat and s >= sz) and (lo < lat or s > sz)
            for j, (lo, s) in enumerate(points)
            if j != i
        )
    }


def _front_kept(pairs: list[tuple[dict[str, Any], float, float]], size: str) -> str:
    if len(pairs) < 2:
        return "–"
    sizes = [float(row[size]) for row, _, _ in pairs]
    eager = pareto_front([e for _, e, _ in pairs], sizes)
    other = pareto_front([o for _, _, o in pairs], sizes)
    return f"{len(eager & other)}/{len(eager)}"


def summarize_space(name: str, rows: list[dict[str, Any]]) -> None:
    """Print the space's comparison of every runtime with eager, and the int8 figures."""
    print(f"\n{name}: {len(rows)} models ({sum(r['kind'] == 'arch' for r in rows)} random archs)")
    header = ("runtime", "latency / eager [range]", "rho archs", "rho all", "front kept (params)",
              "front kept (MACs)", "failed")  # fmt: skip
    widths = (18, 24, 14, 14, 20, 18, 6)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for runtime in RUNTIMES[1:]:
        pairs = _pairs(rows, runtime)
        archs = [(e, o) for row, e, o in pairs if row["kind"] == "arch"]
        cells = (
            runtime,
            _gmean_range([o / e for _, e, o in pairs]),
            _rho([e for e, _ in archs], [o for _, o in archs]),
            _rho([e for _, e, _ in pairs], [o for _, _, o in pairs]),
            _front_kept(pairs, "params"),
            _front_kept(pairs, "macs"),
            str(sum(bool(r.get(f"{_key(runtime)}_error")) for r in rows)),
        )
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)))
    _summarize_int8(rows)
    vias = [r["torchscript_via"] for r in rows if r.get("torchscript_via")]
    scripted = [v for v in vias if v != "trace"]
    print(f"  TorchScript: traced {len(vias) - len(scripted)}, scripted {len(scripted)}"
          + (f" ({scripted[0]})" if scripted else ""))  # fmt: skip


def _summarize_int8(rows: list[dict[str, Any]]) -> None:
    speedups = [
        f / i
        for f, i in ((_value(r, "onnxruntime_ms"), _value(r, "onnxruntime_int8_ms")) for r in rows)
        if math.isfinite(f) and math.isfinite(i)
    ]
    print(f"  int8 speed-up over ONNX Runtime float: {_gmean_range(speedups)}")
    measured = [r for r in rows if math.isfinite(_value(r, "int8_top1_agreement"))]
    if not measured:
        return
    total = sum(_value(r, "int8_images") for r in measured)
    for column, what in (
        ("int8_top1_agreement", "top-1 agreement with float"),
        ("int8_centred_top1_agreement", "top-1 agreement, each model's mean logits removed"),
    ):
        agree = sum(_value(r, column) * _value(r, "int8_images") for r in measured)
        lowest = min(measured, key=lambda r: _value(r, column))
        print(
            f"  int8 {what}: {agree:.0f}/{total:.0f} images ({100 * agree / total:.1f}%), "
            f"lowest {100 * _value(lowest, column):.0f}% ({lowest['name']})"
        )
    classes = [_value(r, "int8_float_classes") for r in measured]
    errors = [_value(r, "int8_logits_rel_error") for r in measured]
    blind = sum(
        _value(r, "int8_image_dependence") < _value(r, "int8_logits_rel_error") for r in measured
    )
    print(
        f"  int8 logits off by {100 * statistics.median(errors):.2f}% (median RMS); float top-1 "
        f"in one class for {sum(c == 1 for c in classes)} of {len(classes)} models, logits "
        f"varying less between images than the int8 error for {blind}"
    )


# --- CSV ---------------------------------------------------------------------------------------


def read_rows(path: Path | None) -> list[dict[str, Any]]:
    if path is None or not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write every row (a temporary file renamed over ``path``, so a crash leaves the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _stored(rows: list[dict[str, Any]], space: str, names: list[str]) -> list[dict[str, Any]]:
    """The rows of ``space`` in the file, in ``names`` order, if all of ``names`` are there."""
    mine = {r["name"]: r for r in rows if r["space"] == space}
    return [mine[n] for n in names] if all(n in mine for n in names) else []


def run(args: argparse.Namespace, say: Callable[[str], None] = print) -> None:
    spaces = args.spaces.split(",") if args.spaces else list_spaces()
    stored = read_rows(args.out)
    for name in spaces:
        space = load_space(name)
        say(f"\n== {name} ({space.family.name}, {space.resolution} px)")
        cands = candidates(space, 0 if args.presets_only else args.archs)
        rows = _stored(stored, space.name, [c.name for c in cands])
        if rows:
            say(f"  {len(rows)} models read back from {args.out}")
        else:
            start = time.perf_counter()
            rows = measure_space(space, cands, args.rounds, args.images, not args.no_guard)
            say(f"  {name}: {time.perf_counter() - start:.0f} s")
            if args.out is not None:
                stored = [r for r in stored if r["space"] != space.name] + rows
                write_rows(args.out, stored)
                say(f"  wrote {len(rows)} rows to {args.out}")
        summarize_space(name, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", help="comma-separated space names (default: every space)")
    parser.add_argument("--archs", type=int, default=20, help="random archs per space")
    parser.add_argument("--presets-only", action="store_true", help="no random archs")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds")
    parser.add_argument("--images", type=int, default=32, help="images of the int8 agreement")
    parser.add_argument("--out", type=Path, help="CSV of per-model rows (read back to resume)")
    parser.add_argument("--no-guard", action="store_true", help="keep rounds disturbed by others")
    args = parser.parse_args()
    if args.archs < 0 or args.rounds < 1 or args.images < 1:
        parser.error("--archs must be ≥ 0, --rounds and --images ≥ 1")
    ticks = machine_ticks()
    start = time.perf_counter()
    print(
        f"{cpu_model()}, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"1 thread, {args.rounds} rounds of {RUNS_PER_SLICE} passes; load average at start "
        f"{os.getloadavg()[0]:.2f}"
    )
    run(args)
    print(f"\n{time.perf_counter() - start:.0f} s; load average at end {os.getloadavg()[0]:.2f}")
    print(describe_steal(ticks))


if __name__ == "__main__":
    main()
