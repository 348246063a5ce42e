"""Device profiles: a lookup table of block latencies on one machine, plus a calibration.

``archlab profile-device --space plgvit --out cpu.json`` samples architectures of a space, finds
every distinct block they contain (:func:`archlab.measurement.blocks.block_infos`: class,
configuration and input shape), and times the blocks **in context**, with hooks inside whole
forward passes, since blocks timed alone add up to less than the whole model (docs/measurement.md,
"Per-module latency"; docs/prediction.md). A linear correction
``latency ≈ slope · Σ blocks + intercept`` is then fitted on whole models measured with the
interleaved protocol (and the chosen backend: blocks are always timed eagerly, because hooks need
module boundaries; the calibration maps their sum to the backend's whole-model latency). The whole
models are timed in fresh processes, as a search re-measures its front (so that its anchors compare
like with like); in the process that has just run the hooked passes, ``mobileformer``'s
calibration figures also scattered more from one profiling to the next
(``bench/profile_context.py``).

The file is JSON and records what the figures depend on: CPU, cores, threads, batch, backend,
allocator, torch and archlab versions, and a format version. Reading a file of another format
version raises :class:`ProfileError`. ``archlab.predict.predictor`` uses the table during a search.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from archlab._version import __version__
from archlab.measurement.allocator import describe_allocator
from archlab.measurement.blocks import (
    BlockFeatures,
    block_infos,
    key_input_shape,
    time_in_context_many,
)
from archlab.measurement.fast_macs import UncountedOpError, count_macs_with_blocks
from archlab.measurement.flops import count_macs
from archlab.measurement.interleave import free_core_processes, measure_many_in_processes
from archlab.measurement.latency import cpu_model
from archlab.predict.cost_model import Sample, block_class
from archlab.space import load_space

__all__ = [
    "FORMAT_VERSION",
    "Anchor",
    "BlockEntry",
    "Calibration",
    "DeviceProfile",
    "ProfileError",
    "block_entry",
    "current_setup",
    "fit_calibration",
    "profile_device",
]

FORMAT_VERSION = 1


class ProfileError(ValueError):
    """A profile file that cannot be used: missing, malformed, or of another format version."""


@dataclass
class BlockEntry:
    """The in-context latency of one block configuration at one input shape."""

    kind: str  # block class name
    ms: float  # median in-context time
    macs: int  # MACs of the block (fvcore + handlers)
    samples: int  # in-context observations behind the median
    source: str = "profile"  # "profile" or "on-demand" (added during a search)
    ops: int | None = None  # aten ops it dispatched (None: not recorded, e.g. an older file)
    bytes: int | None = None  # bytes its ops wrote
    scores: int | None = None  # fused attention's query-key pairs (None: an older file)

    def features(self) -> BlockFeatures | None:
        """The block's cost-model features, when the entry records them (scores 0 if not)."""
        if self.ops is None or self.bytes is None:
            return None
        return BlockFeatures(self.macs, self.ops, self.bytes, self.scores or 0)


@dataclass
class Calibration:
    """``whole-model latency ≈ slope · Σ block table + intercept_ms``, fitted on whole models."""

    slope: float = 1.0
    intercept_ms: float = 0.0
    n_models: int = 0
    fit_error: float | None = None  # median |error| / measured, leave-one-out, on those models

    def apply(self, blocks_ms: float) -> float:
        return self.slope * blocks_ms + self.intercept_ms


@dataclass
class Anchor:
    """A calibration model and its whole-model latency when the profile was made.

    Timing anchors again later, beside other models, tells how much faster or slower the machine
    runs now than when the profile was made (:mod:`archlab.predict.time_base`).
    """

    config: dict[str, Any]  # model config with its family (SearchSpace.to_config)
    ms: float  # interleaved median at profiling time


def current_setup(threads: int, backend: str, batch: int) -> dict[str, Any]:
    """What the figures depend on, for this process."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "threads": threads,
        "backend": backend,
        "batch": batch,
        "allocator": describe_allocator(),
        "torch_version": str(torch.__version__),
    }


@dataclass
class DeviceProfile:
    """A block lookup table with its calibration and the setup it was measured in."""

    setup: dict[str, Any]  # see current_setup()
    space: str
    resolution: int
    entries: dict[str, BlockEntry] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)
    anchors: list[Anchor] = field(default_factory=list)  # empty in files made before anchors
    archlab_version: str = __version__
    created: str = ""
    host: str = field(default_factory=platform.node)
    format_version: int = FORMAT_VERSION

    def mismatches(self, setup: dict[str, Any] | None = None) -> list[str]:
        """Settings where this process differs from the profile's (empty: same setup)."""
        here = setup or current_setup(
            self.setup["threads"], self.setup["backend"], self.setup["batch"]
        )
        return [
            f"{k}: profile {self.setup.get(k)!r}, here {v!r}"
            for k, v in here.items()
            if self.setup.get(k) != v
        ]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def cost_model_samples(self) -> list[Sample]:
        """:meth:`cost_model_samples_by_key` without the keys."""
        return list(self.cost_model_samples_by_key().values())

    def cost_model_samples_by_key(self) -> dict[str, Sample]:
        """The timed entries that record features, by key, as
        :class:`archlab.predict.cost_model.CostModel` fits them: (class at the block's input shape,
        features, ms).

        When some entries lack attention scores (an older file), the feature is left out for
        all: fitted on the newer entries alone, it would charge attention the older ones' times
        already include.
        """
        usable = [
            (key, e, f)
            for key, e in self.entries.items()
            if (f := e.features()) is not None and e.ms > 0
        ]
        if any(e.scores is None for _, e, _ in usable):
            usable = [(key, e, replace(f, scores=0)) for key, e, f in usable]
        return {key: (block_class(e.kind, key_input_shape(key)), f, e.ms) for key, e, f in usable}

    def save(self, path: Path) -> None:
        """Write atomically (a temporary file, then a rename), so readers never see half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=1, sort_keys=True))
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> DeviceProfile:
        version = data.get("format_version") if isinstance(data, dict) else None
        if version != FORMAT_VERSION:
            raise ProfileError(
                f"{source}: profile format version {version!r}, but this archlab "
                f"({__version__}) reads version {FORMAT_VERSION}; re-create it with "
                "archlab profile-device"
            )
        try:
            entries = {k: BlockEntry(**v) for k, v in data["entries"].items()}
            calibration = Calibration(**data["calibration"])
            anchors = [Anchor(**a) for a in data.get("anchors", [])]
            rest = {k: v for k, v in data.items() if k not in ("entries", "calibration", "anchors")}
            return cls(entries=entries, calibration=calibration, anchors=anchors, **rest)
        except (KeyError, TypeError) as err:
            raise ProfileError(f"{source}: not a valid device profile ({err})") from None

    @classmethod
    def load(cls, path: Path) -> DeviceProfile:
        """Read a profile file.

        Raises:
            ProfileError: missing file, invalid JSON, another format version, or missing fields.
        """
        try:
            data = json.loads(Path(path).read_text())
        except OSError as err:
            raise ProfileError(f"cannot read device profile {path}: {err.strerror}") from None
        except json.JSONDecodeError as err:
            raise ProfileError(f"{path}: not a JSON device profile ({err})") from None
        return cls.from_dict(data, str(path))

    def merge_save(self, path: Path) -> None:
        """Add the entries another process saved meanwhile (theirs win on equal keys), then save."""
        if Path(path).exists():
            try:
                on_disk = DeviceProfile.load(path)
            except ProfileError:
                on_disk = None
            if on_disk is not None:
                self.entries = {**self.entries, **on_disk.entries}
        self.save(path)


def fit_calibration(blocks_ms: list[float], measured_ms: list[float]) -> Calibration:
    """Least-squares line from summed block times to measured whole-model times.

    With fewer than three models, or sums that do not vary, only an offset is fitted.
    """
    n = len(blocks_ms)
    if n == 0:
        return Calibration()

    def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
        if len(xs) < 3 or statistics.pvariance(xs) == 0:
            return 1.0, statistics.median(y - x for x, y in zip(xs, ys))
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        return slope, my - slope * mx

    slope, intercept = fit(blocks_ms, measured_ms)
    errors = []
    for i in range(n):  # leave-one-out: an honest figure of the fit's error
        others = [j for j in range(n) if j != i]
        s, b = (
            fit([blocks_ms[j] for j in others], [measured_ms[j] for j in others])
            if n > 1
            else (slope, intercept)
        )
        errors.append(abs(s * blocks_ms[i] + b - measured_ms[i]) / measured_ms[i])
    return Calibration(slope, intercept, n, statistics.median(errors) if n > 1 else None)


def _sample_models(space: Any, n: int, seed: int) -> list[tuple[dict[str, Any], Any]]:
    """``n`` valid (arch, cfg) pairs: the default arch, then seeded random samples."""
    randoms = (space.sample(seed * 100_003 + i) for i in range(50 * n))
    return space.first_valid(itertools.chain([space.default()], randoms), n)


def _blocks_of(
    model: torch.nn.Module, x: torch.Tensor
) -> list[tuple[str, str, str, BlockFeatures | int]]:
    """(name, key, kind, features) of each block of ``model``; just its MACs when the fast count
    cannot run the model (the reference count has no op or byte figures)."""
    try:
        counted = count_macs_with_blocks(model, x.shape[-1], batch=x.shape[0])
    except UncountedOpError:
        macs = count_macs(model, x.shape[-1], batch=x.shape[0]).by_module
        return [(i.name, i.key, i.kind, macs.get(i.name, 0)) for i in block_infos(model, x)]
    return [(i.name, i.key, i.kind, counted.features(i.name)) for i in counted.blocks]


def block_entry(
    kind: str, ms: float, features: BlockFeatures | int, samples: int, source: str = "profile"
) -> BlockEntry:
    """A table entry from a timing and what :func:`_blocks_of` found (features or MACs)."""
    if isinstance(features, BlockFeatures):
        return BlockEntry(
            kind, ms, features.macs, samples, source, features.ops, features.bytes, features.scores
        )
    return BlockEntry(kind, ms, features, samples, source)


def _table_sum(profile: DeviceProfile, keys: list[str]) -> float:
    """Σ of the table entries for ``keys`` (all must be present)."""
    return sum(profile.entries[k].ms for k in keys)


def _time_blocks(
    space: Any,
    cfgs: list[Any],
    res: int,
    batch: int,
    runs: int,
    threads: int,
    say: Callable[[str], None],
) -> tuple[dict[str, Any], list[list[str]]]:
    """The lookup table's entries (block key → median in-context time) from models built from
    ``cfgs``, and each model's block keys."""
    x = torch.randn(batch, 3, res, res)
    observed: dict[str, list[float]] = {}
    kinds: dict[str, tuple[str, BlockFeatures | int]] = {}
    model_keys: list[list[str]] = []
    models, blocks = [], []
    for cfg in cfgs:
        torch.manual_seed(0)
        models.append(space.family.build(cfg).eval())
        blocks.append(_blocks_of(models[-1], x))
    say(f"timing the blocks of {len(models)} models in context (interleaved, {runs} passes each)")
    timings = time_in_context_many(models, x, runs=runs, threads=threads)
    for model_blocks, timing in zip(blocks, timings):
        for name, key, kind, features in model_blocks:
            observed.setdefault(key, []).append(timing.module_ms.get(name, 0.0))
            kinds[key] = (kind, features)
        model_keys.append([b[1] for b in model_blocks])
    say(f"{len(observed)} distinct blocks")
    entries = {
        k: block_entry(kinds[k][0], statistics.median(v), kinds[k][1], len(v))
        for k, v in observed.items()
    }
    return entries, model_keys


def _measure_whole(
    configs: list[dict[str, Any]],
    res: int,
    threads: int,
    batch: int,
    backend: str,
    slices: int,
    processes: int | None,
    say: Callable[[str], None],
) -> list[float]:
    """Median latency (ms) of each calibration model, timed whole (interleaved, fresh processes)."""
    processes = processes or free_core_processes(threads, slices)
    say(
        f"measuring {len(configs)} whole models (interleaved, {backend}) for the calibration, "
        f"in {processes} fresh process{'es' if processes > 1 else ''}"
    )
    latencies = measure_many_in_processes(
        configs,
        res,
        processes=processes,
        slices=slices,
        seed=0,  # the weights the models of _time_blocks were built with
        threads=threads,
        batch=batch,
        backend=backend,
    )
    return [lat.median_ms for lat in latencies]


def profile_device(
    space_name: str,
    *,
    threads: int = 1,
    backend: str = "eager",
    batch: int = 1,
    n_models: int = 24,
    n_calibration: int = 24,
    runs: int = 30,
    seed: int = 0,
    resolution: int | None = None,
    calibration_slices: int = 40,
    calibration_processes: int | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> DeviceProfile:
    """Measure the block lookup table and calibration of a space on this machine.

    Args:
        space_name: a space name or YAML path.
        threads, backend, batch: the setup to profile (backend affects the calibration only).
        n_models: sampled architectures whose blocks are timed in context.
        n_calibration: how many of them are also measured whole (interleaved) for the fit.
        runs: hooked forward passes per model (the median is kept per block).
        seed: sampling seed.
        resolution: input size (default: the space's).
        calibration_slices: interleaved slices (of 2 runs) per calibration model, over all
            processes.
        calibration_processes: fresh processes timing the calibration models at once, each
            running its share of the slices (default: one per free core).
        on_progress: called with a line of text after each step.
    """
    say = on_progress or (lambda _: None)
    space = load_space(space_name)
    res = resolution or space.resolution
    space.resolution = res
    sampled = _sample_models(space, n_models, seed)
    cfgs = [cfg for _, cfg in sampled]
    entries, model_keys = _time_blocks(space, cfgs, res, batch, runs, threads, say)
    profile = DeviceProfile(
        current_setup(threads, backend, batch),
        space.name,
        res,
        entries,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(),
    )
    configs = [space.to_config(arch) for arch, _ in sampled[:n_calibration]]
    measured = _measure_whole(
        configs, res, threads, batch, backend, calibration_slices, calibration_processes, say
    )
    sums = [_table_sum(profile, keys) for keys in model_keys[: len(configs)]]
    profile.calibration = fit_calibration(sums, measured)
    profile.anchors = [Anchor(c, ms) for c, ms in zip(configs, measured)]
    return profile
