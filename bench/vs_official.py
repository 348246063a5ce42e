"""Our presets against the authors' own code: same weights, same logits, timed side by side.

Needs local clones of the authors' repositories (nothing is downloaded): ``--sbcformer DIR``
(xyongLu/SBCFormer: ``models/sbcformer.py``), ``--mobileformer DIR`` (AAboys/MobileFormer:
``mobile_former.py`` and ``dna_blocks.py``, modules of a timm fork, imported as a package whose
``helpers``, ``registry`` and ``layers`` are stood in for) and ``--parc DIR`` (hkzhang91/ParC-Net:
``ParC_ConvNets/`` for the ParC ConvNets; the ``cvnets`` package and the
``config/classification/edgeformer/edgeformer_{xs,s,h}.yaml`` files for ParC-Net-XS/S/H, built by
cvnets' own ``get_model``). The model files import four timm helpers (``register_model``,
``trunc_normal_``, ``DropPath``, ``_cfg``) and cvnets imports ``torchvision.ops.nms`` for its
detection models; neither timm nor torchvision imports beside our torch, so small stand-ins of
ours take their place (in eval mode ``DropPath`` is the identity; ``nms`` is never called).
Each model gets an input at its preset's resolution (256 × 256 for ParC-Net, else 224 × 224).

Each ``--processes`` is a fresh Python process (``--allocator`` sets glibc's malloc for all of
them). In it, for every model: our preset is built, its weights are mapped onto the official model
(:func:`archlab.models.pretrained.to_official`) and the logits compared; then our model, the
official one and a copy of ours (the control) are timed interleaved (one thread, rotated rounds,
rounds disturbed by other processes run again), and each one's minor page faults per pass are
counted while they alternate. The ratio ours ÷ official varies with the process's heap layout, so
it is reported per process, beside the control ours ÷ copy of ours: a gap no wider than the
control's spread is not a difference between the implementations.

Run: ``.venv/bin/python bench/vs_official.py --sbcformer ~/src/SBCFormer --parc ~/src/ParC-Net
[--mobileformer ~/src/MobileFormer] [--processes 4] [--allocator no-trim] [--slices 16]
[--models sbcformer_xs,parc_mobilenetv2]``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import importlib.util
import io
import json
import resource
import statistics
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from archlab.measurement.allocator import ALLOCATORS, allocator_env
from archlab.measurement.backends import prepare
from archlab.measurement.contention import ContentionGuard
from archlab.measurement.interleave import interleaved_times
from archlab.measurement.latency import torch_threads
from archlab.models import find_preset
from archlab.models.pretrained import to_official

Builder = Callable[[Path], nn.Module]  # the official model from the repository's root


def _from_file(file: str, make: Callable[[Any], nn.Module]) -> Builder:
    """An official model built by ``make`` from the module of ``file`` (a model file)."""
    return lambda root: make(_official_module(root / file))


def _edgeformer(variant: str) -> Builder:
    """ParC-Net-XS/S/H: the cvnets ``edgeformer`` model built from its config file."""
    return lambda root: _build_edgeformer(root, variant)


class _DropPath(nn.Identity):  # stochastic depth: the identity at inference
    pass


def _register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    return fn


def _cfg(url: str = "", **kwargs: Any) -> dict[str, Any]:
    return {"url": url, **kwargs}


def _nms(*_: Any, **__: Any) -> Any:
    raise NotImplementedError("detection is not compared here")


def _build_with_cfg(
    cls: Callable[..., nn.Module], variant: str, pretrained: bool, **kwargs: Any
) -> nn.Module:
    """timm's ``build_model_with_cfg`` without weights: the model class on its arguments."""
    kwargs.pop("default_cfg", None)
    return cls(**kwargs)


_MEAN_STD = {
    "IMAGENET_DEFAULT_MEAN": (0.485, 0.456, 0.406), "IMAGENET_DEFAULT_STD": (0.229, 0.224, 0.225),
    "IMAGENET_INCEPTION_MEAN": (0.5, 0.5, 0.5), "IMAGENET_INCEPTION_STD": (0.5, 0.5, 0.5),
}  # fmt: skip


def _add_modules(names: dict[str, dict[str, Any]]) -> None:
    for name, attrs in names.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module


def _install_stand_ins() -> None:
    """The timm names the official model files import, and the one torchvision name cvnets
    imports (``torchvision.ops.nms``, for its detection models only), as modules in
    ``sys.modules``."""
    _add_modules({
        "timm": {},
        "timm.data": dict(_MEAN_STD),
        "timm.models": {},
        "timm.models.layers": {"DropPath": _DropPath, "trunc_normal_": nn.init.trunc_normal_},
        "timm.models.registry": {"register_model": _register_model},
        "timm.models.vision_transformer": {"_cfg": _cfg},
        "torchvision": {},
        "torchvision.ops": {"nms": _nms},
    })  # fmt: skip


_MF_PACKAGE = "mobileformer_official"


def _mobile_former(variant: str) -> Builder:
    """Mobile-Former: the repository's files are modules of a timm fork (relative imports of its
    ``helpers``, ``registry`` and ``layers``): they are imported as a package of their own, those
    three modules stood in for."""
    return lambda root: _build_mobile_former(root, variant)


def _build_mobile_former(root: Path, variant: str) -> nn.Module:
    if _MF_PACKAGE not in sys.modules:
        package = types.ModuleType(_MF_PACKAGE)
        package.__path__ = [str(root)]
        sys.modules[_MF_PACKAGE] = package
        _add_modules({
            f"{_MF_PACKAGE}.helpers": {
                "build_model_with_cfg": _build_with_cfg, "default_cfg_for_features": dict,
            },
            f"{_MF_PACKAGE}.registry": {"register_model": _register_model},
            f"{_MF_PACKAGE}.layers": {"DropPath": _DropPath},
        })  # fmt: skip
    module = importlib.import_module(f"{_MF_PACKAGE}.mobile_former")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the whole model
        return getattr(module, f"mobile_former_{variant}")()


def _official_module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"official_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ours(name: str) -> nn.Module:
    """Our preset with weights and BN statistics far from any initialisation, so that a tensor
    mapped to the wrong place changes the logits."""
    family, _, preset = find_preset(name)
    torch.manual_seed(0)
    model = family.build(preset.cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as cvnets reads it: ``{"model": {"a": 1}}`` → ``{"model.a": 1}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out.update(_flat(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def _build_edgeformer(root: Path, variant: str) -> nn.Module:
    """The official ParC-Net of ``config/classification/edgeformer/edgeformer_<variant>.yaml``,
    built by cvnets' own ``get_model`` on the options its model and layer parsers define."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from cvnets import arguments_model, arguments_nn_layers, get_model  # the official package

    parser = arguments_model(arguments_nn_layers(argparse.ArgumentParser()))
    opts = parser.parse_args([])
    path = root / "config" / "classification" / "edgeformer" / f"edgeformer_{variant}.yaml"
    for key, value in _flat(yaml.safe_load(path.read_text())).items():
        setattr(opts, key, value)
    setattr(opts, "model.classification.pretrained", None)  # nothing is downloaded
    return get_model(opts)


# preset → (repository option, how to build the official variant from the repository)
OFFICIAL: dict[str, tuple[str, Builder]] = {
    "sbcformer_xs": ("sbcformer", _from_file("models/sbcformer.py", lambda m: m.SBCFormer_XS())),
    "sbcformer_s": ("sbcformer", _from_file("models/sbcformer.py", lambda m: m.SBCFormer_S())),
    "sbcformer_b": ("sbcformer", _from_file("models/sbcformer.py", lambda m: m.SBCFormer_B())),
    "sbcformer_l": ("sbcformer", _from_file("models/sbcformer.py", lambda m: m.SBCFormer_L())),
    **{
        f"mobileformer_{v}": ("mobileformer", _mobile_former(v))
        for v in ("26m", "52m", "96m", "151m", "214m", "294m", "508m")
    },
    "parc_net_xs": ("parc", _edgeformer("xs")),
    "parc_net_s": ("parc", _edgeformer("s")),
    "parc_net_h": ("parc", _edgeformer("h")),
    "parc_mobilenetv2": (
        "parc", _from_file("ParC_ConvNets/ParC_mobilenetv2.py", lambda m: m.ParC_MobileNetV2())
    ),
    "parc_convnext_xt": (
        "parc", _from_file(
            "ParC_ConvNets/ParC_convnext.py",
            lambda m: m.ParC_ConvNeXt(depths=[3, 3, 9, 3], dims=[48, 96, 192, 384],
                                      ParC_insert_locs=[3, 3, 6, 2], stages_rs=[56, 28, 14, 7]),
        ),
    ),
    "parc_resnet50": (
        "parc", _from_file(
            "ParC_ConvNets/ParC_resnet50.py",
            lambda m: m.parc_resnet(m.Bottleneck, [3, 4, 6, 3], [3, 4, 3, 2]),
        ),
    ),
}  # fmt: skip


def _official(name: str, ours: nn.Module, repos: dict[str, Path]) -> nn.Module:
    repo, build = OFFICIAL[name]
    model = build(repos[repo])
    target = model.state_dict()
    mapped = to_official(ours)
    model.load_state_dict({k: v.reshape(target[k].shape) for k, v in mapped.items()}, strict=False)
    model.train()
    return model.eval()  # the official SBCFormer gathers its attention biases at eval()


def _faults_per_pass(models: list[nn.Module], x: torch.Tensor, passes: int = 10) -> list[float]:
    """Minor page faults of each model's passes while the models alternate."""
    counts = [0] * len(models)
    with torch.inference_mode():
        for _ in range(passes):
            for i, model in enumerate(models):
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                model(x)
                counts[i] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return [c / passes for c in counts]


def _child(names: list[str], repos: dict[str, Path], slices: int) -> None:
    _install_stand_ins()
    for name in names:
        x = torch.randn(1, 3, find_preset(name)[2].resolution, find_preset(name)[2].resolution)
        ours = _ours(name)
        official = _official(name, ours, repos)
        with torch.inference_mode():
            diff = (ours(x) - official(x)).abs().max().item()
        models = [ours, official, copy.deepcopy(ours)]
        with torch_threads(1):
            runners = [prepare(m, x, "eager", "contiguous", 1) for m in models]
            times = interleaved_times(runners, ContentionGuard(1), slices, 3, 3, 0.0)
            faults = _faults_per_pass(models, x)
        ms = [statistics.median(t) for t in times]
        print(json.dumps({
            "model": name, "max_abs_diff": diff, "ours_ms": ms[0], "official_ms": ms[1],
            "ratio": ms[0] / ms[1], "control": ms[0] / ms[2],
            "faults_ours": faults[0], "faults_official": faults[1],
        }), flush=True)  # fmt: skip


def _report(rows: list[dict[str, Any]], names: list[str]) -> None:
    print(
        f"\n{'model':<18} {'ours ÷ official, per process':<34} {'median':>7} "
        f"{'control range':>14} {'faults/pass ours, official':>27} {'max |Δ logit|':>14}"
    )
    ratios = []
    for name in names:
        mine = [r for r in rows if r["model"] == name]
        per = [r["ratio"] for r in mine]
        control = [r["control"] for r in mine]
        ratios.append(statistics.median(per))
        faults = ", ".join(f"{r['faults_ours']:.0f}/{r['faults_official']:.0f}" for r in mine)
        print(
            f"{name:<18} {' '.join(f'{v:.3f}' for v in per):<34} {statistics.median(per):7.3f} "
            f"{min(control):.3f}–{max(control):.3f}  {faults:>27} "
            f"{max(r['max_abs_diff'] for r in mine):14.1e}"
        )
    print(f"geometric mean of the medians over {len(ratios)} models: "
          f"{statistics.geometric_mean(ratios):.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sbcformer", type=Path, help="a clone of xyongLu/SBCFormer")
    parser.add_argument("--parc", type=Path, help="a clone of hkzhang91/ParC-Net")
    parser.add_argument("--mobileformer", type=Path, help="a clone of AAboys/MobileFormer")
    parser.add_argument("--models", help=f"comma-separated (default: all of {list(OFFICIAL)} "
                        "whose repository is given)")  # fmt: skip
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--slices", type=int, default=16, help="interleaved rounds per process")
    parser.add_argument("--allocator", choices=list(ALLOCATORS), default="no-trim")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    given = (
        ("sbcformer", args.sbcformer),
        ("parc", args.parc),
        ("mobileformer", args.mobileformer),
    )
    repos = {k: v for k, v in given if v}
    if args.child:
        _child(args.child.split(","), repos, args.slices)
        return
    names = args.models.split(",") if args.models else [
        n for n, (repo, _) in OFFICIAL.items() if repo in repos
    ]  # fmt: skip
    unknown = [n for n in names if n not in OFFICIAL or OFFICIAL[n][0] not in repos]
    if not names or unknown:
        raise SystemExit(f"no official code given for {unknown or 'any model'}: "
                         "pass --sbcformer DIR, --parc DIR and/or --mobileformer DIR")  # fmt: skip
    command = [sys.executable, __file__, "--child", ",".join(names), "--slices", str(args.slices)]
    for repo, path in repos.items():
        command += [f"--{repo}", str(path)]
    rows: list[dict[str, Any]] = []
    for i in range(args.processes):
        out = subprocess.run(
            command, env=allocator_env(args.allocator), capture_output=True, text=True
        )
        if out.returncode:
            raise SystemExit(f"process {i} failed:\n{out.stderr[-2000:]}")
        rows += [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        print(f"process {i + 1}/{args.processes} done", flush=True)
    print(f"allocator: {args.allocator}; {args.slices} rounds of 3 passes per model and process")
    _report(rows, names)


if __name__ == "__main__":
    main()
