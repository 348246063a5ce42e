"""fvcore (archlab's reference count) beside thop, op by op, with the reason for every difference.

Totals can agree within a few percent by accident (missing attention cancelling against norm
counts), so the comparison is made where the two counters see the model differently:

* **functional ops** (``F.scaled_dot_product_attention``, ``@``, FFTs, ``torch.linalg.vector_norm``
  in GRN, ``F.interpolate``, ``F.layer_norm`` ...) run inside a module's ``forward`` without a
  module of their own. fvcore traces them; thop only hooks registered modules and counts them 0.
* **leaf modules**, grouped by type. thop applies a rule only to exact types it knows (a subclass or
  a custom norm counts 0), and its per-element rules differ from fvcore's (BatchNorm in eval: thop
  4 per element, fvcore 2; LayerNorm: thop 4, fvcore 5; softmax and average pooling: thop counts
  them, archlab's convention counts 0). The rows show both rates per input element, so the reason is
  a measured figure, not a guess.
* **aliased modules** (one module registered under two names) are counted once per name by thop.
"""

from __future__ import annotations

import copy
import io
import logging
import math
from collections import Counter, defaultdict
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import pandas as pd
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

from archlab.measurement.flops import CONVENTION_ZERO_OPS, EXTRA_MAC_HANDLES

__all__ = ["compare_counters"]

_FUNCTIONAL_WHY = {
    "scaled_dot_product_attention": "the q·kᵀ and attn·v matmuls of F.scaled_dot_product_attention",
    "matmul": "an explicit matmul (@ / torch.matmul)",
    "bmm": "an explicit batched matmul",
    "einsum": "torch.einsum",
    "fft_rfft2": "a 2-D FFT (torch.fft.rfft2)",
    "fft_irfft2": "an inverse 2-D FFT (torch.fft.irfft2)",
    "linalg_vector_norm": "torch.linalg.vector_norm (GRN's L2 norm over the map)",
    "upsample_bilinear2d": "F.interpolate (bilinear)",
    "layer_norm": "F.layer_norm (a norm written as a function, e.g. LayerNorm2d)",
    "mean": "a mean (pooling written as x.mean)",
    "linear": "F.linear",
    "conv": "F.conv2d",
}


def _fvcore_by_module_and_op(model: nn.Module, example: torch.Tensor) -> dict[str, Counter[str]]:
    analysis = FlopCountAnalysis(model, example)
    analysis.set_op_handle(**{op: None for op in CONVENTION_ZERO_OPS})
    analysis.set_op_handle(**EXTRA_MAC_HANDLES)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    with torch.no_grad():
        return {
            k: Counter({op: int(v) for op, v in c.items()})
            for k, c in analysis.by_module_and_operator().items()
        }


def _thop(model: nn.Module, example: torch.Tensor) -> tuple[float, dict[str, float]]:
    """thop's total and its figure for every innermost module of its tree, by name."""
    import thop

    clone = copy.deepcopy(model).eval()
    logging.getLogger("thop").setLevel(logging.ERROR)
    with torch.no_grad(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        total, _, tree = thop.profile(clone, inputs=(example,), verbose=False, ret_layer_info=True)
    out: dict[str, float] = {}

    def walk(prefix: str, node: dict[str, Any]) -> None:
        for name, (ops, _, children) in node.items():
            if children:
                walk(f"{prefix}{name}.", children)
            else:
                out[f"{prefix}{name}"] = float(ops)

    walk("", tree)
    return float(total), out


def _input_elements(
    model: nn.Module, example: torch.Tensor, names: list[str]
) -> dict[str, tuple[int, int]]:
    """(calls, elements of the first tensor argument summed over calls) per module."""
    modules = dict(model.named_modules())
    seen: dict[str, tuple[int, int]] = {}
    handles = []
    for name in names:

        def hook(m: nn.Module, args: tuple[Any, ...], n: str = name) -> None:
            calls, elements = seen.get(n, (0, 0))
            numel = args[0].numel() if args and isinstance(args[0], torch.Tensor) else 0
            seen[n] = (calls + 1, elements + numel)

        handles.append(modules[name].register_forward_pre_hook(hook))
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return seen


def _own_ops(name: str, per_module: dict[str, Counter[str]], children: list[str]) -> Counter[str]:
    own = Counter(per_module.get(name, Counter()))
    for child in children:
        own.subtract(per_module.get(child, Counter()))
    return Counter({op: n for op, n in own.items() if n > 0})


def _leaf_reason(kind: str, fv: int, th: float, calls: int, elements: int, ops: set[str]) -> str:
    if calls == 0:
        return "never called in the forward pass"
    if math.isclose(fv, th, rel_tol=1e-6, abs_tol=0.5):
        return "same count"
    if th == 0:
        inside = f"; fvcore sees {', '.join(sorted(ops))} inside it" if ops else ""
        return f"thop has no rule for {kind} (it matches exact module types only{inside})"
    if elements == 0:
        return f"thop and fvcore count {kind} differently"
    th_rate = th / elements
    if fv == 0:
        return (
            f"thop counts {kind} at {th_rate:.2f} per input element; archlab counts it 0 by "
            "convention (element-wise: no multiply-accumulate)"
        )
    return f"different rules: thop {th_rate:.2f}, fvcore {fv / elements:.2f} per input element"


def _leaf_rows(
    model: nn.Module,
    example: torch.Tensor,
    per_module: dict[str, Counter[str]],
    thop_counts: dict[str, float],
) -> list[dict[str, Any]]:
    modules = dict(model.named_modules())
    leaves = [n for n, m in modules.items() if n and not list(m.children())]
    elements = _input_elements(model, example, leaves)
    groups: dict[str, dict[str, Any]] = {}
    for name in leaves:
        kind = type(modules[name]).__name__
        g = groups.setdefault(kind, {"fv": 0, "th": 0.0, "n": 0, "calls": 0, "el": 0, "ops": set()})
        g["fv"] += sum(per_module.get(name, Counter()).values())
        g["th"] += thop_counts.get(name, 0.0)
        g["ops"] |= {op for op, n in per_module.get(name, Counter()).items() if n}
        g["n"] += 1
        calls, n_elements = elements.get(name, (0, 0))
        g["calls"] += calls
        g["el"] += n_elements
    return [
        {
            "item": f"{kind} modules",
            "kind": "module",
            "count": g["n"],
            "fvcore_macs": g["fv"],
            "thop_macs": int(g["th"]),
            "why": _leaf_reason(kind, g["fv"], g["th"], g["calls"], g["el"], g["ops"]),
        }
        for kind, g in groups.items()
        if g["fv"] or g["th"] or not g["calls"]
    ]


def _functional_rows(model: nn.Module, per_module: dict[str, Counter[str]]) -> list[dict[str, Any]]:
    totals: Counter[str] = Counter()
    owners: dict[str, set[str]] = defaultdict(set)
    callers: Counter[str] = Counter()
    for name, module in model.named_modules():
        children = [f"{name}.{c}" if name else c for c, _ in module.named_children()]
        if not children:
            continue
        for op, n in _own_ops(name, per_module, children).items():
            totals[op] += n
            owners[op].add(type(module).__name__)
            callers[op] += 1
    return [
        {
            "item": f"{op} (functional)",
            "kind": "functional",
            "count": callers[op],
            "fvcore_macs": n,
            "thop_macs": 0,
            "why": f"{_FUNCTIONAL_WHY.get(op, op)} called inside {', '.join(sorted(owners[op]))}: "
            "thop only hooks registered modules",
        }
        for op, n in totals.most_common()
    ]


def _alias_rows(model: nn.Module, thop_counts: dict[str, float]) -> list[dict[str, Any]]:
    names: dict[int, list[str]] = defaultdict(list)
    for name, module in model.named_modules(remove_duplicate=False):
        names[id(module)].append(name)
    aliased = [n for n in names.values() if len(n) > 1]
    if not aliased:
        return []
    extra = sum(thop_counts.get(n, 0.0) for group in aliased for n in group[1:])
    return [
        {
            "item": "aliased modules",
            "kind": "alias",
            "count": len(aliased),
            "fvcore_macs": 0,
            "thop_macs": int(extra),
            "why": f"registered under two names ({aliased[0][0]} = {aliased[0][1]} ...): thop "
            "counts such a module once per name, fvcore once",
        }
    ]


def compare_counters(model: nn.Module, resolution: int | tuple[int, int]) -> pd.DataFrame:
    """One row per op or module type where fvcore + handlers and thop may differ, with why.

    Columns: ``item``, ``kind`` (``functional``, ``module``, ``alias`` or ``total``), ``count``
    (modules), ``fvcore_macs``, ``thop_macs``, ``diff_macs`` (thop − fvcore) and ``why``. Rows are
    sorted by the size of the difference; the last row is the total.
    """
    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    model.eval()
    example = torch.randn(1, 3, h, w)
    per_module = _fvcore_by_module_and_op(model, example)
    thop_total, thop_counts = _thop(model, example)
    rows = _functional_rows(model, per_module) + _leaf_rows(model, example, per_module, thop_counts)
    rows += _alias_rows(model, thop_counts)
    frame = pd.DataFrame(rows)
    frame["diff_macs"] = frame["thop_macs"] - frame["fvcore_macs"]
    frame = frame.reindex(frame["diff_macs"].abs().sort_values(ascending=False).index)
    fvcore_sum = sum(per_module.get("", Counter()).values())
    thop_sum = int(thop_total)
    total: dict[str, object] = {
        "item": "total",
        "kind": "total",
        "count": None,
        "fvcore_macs": fvcore_sum,
        "thop_macs": thop_sum,
        "why": "",
    }
    total["diff_macs"] = thop_sum - fvcore_sum
    frame = pd.concat([frame, pd.DataFrame([total])], ignore_index=True)
    return frame[["item", "kind", "count", "fvcore_macs", "thop_macs", "diff_macs", "why"]]
