"""Direct ParC vs Fast-ParC (FFT) latency, side by side, and where the FFT starts to win.

Times one ParC-H op (``archlab.layers.ParCConv``) on a (1, C, L, L) map at L = 7 ... 112 for a few
widths, both implementations in the same process: 1 thread, ``torch.inference_mode()``, warm-up,
then timed slices that alternate direct and FFT (so drift hits both alike); the median of all timed
calls is reported, by wall clock and by this thread's CPU time (which other processes on a shared
machine barely disturb). Dense rows (ParC-ResNet50's ``groups=1`` ParC) follow. Each row says which
implementation ``impl="auto"`` picks and whether that is the faster one; the thresholds in
``archlab.layers.parc`` (``parc_uses_fft``) were set from this output.

Run: ``.venv/bin/python bench/parc_fft.py`` (about 30-40 s). ``--quick`` runs one width only.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from archlab.layers.parc import (
    FFT_MAX_SMALL_LENGTH,
    FFT_MIN_LENGTH,
    FFT_MIN_LENGTH_DENSE,
    ParCConv,
    ParCImpl,
    parc_uses_fft,
)
from archlab.measurement.latency import cpu_model

LENGTHS = (7, 14, 28, 40, 56, 80, 112)
WIDTHS = (48, 96, 192)  # ParC-Net-S/-H halves span 48-216 channels
DENSE = ((64, (7, 14, 28)), (128, (7, 14, 28)))  # ParC-ResNet50: 128 ch at L=14
IMPLS: tuple[ParCImpl, ...] = ("direct", "fft")
SLICES = 6  # alternating timed slices per implementation
SLICE_BUDGET_S = 0.04  # wall time per slice per implementation


def _time_calls(
    op: ParCConv, x: torch.Tensor, calls: int, wall: list[float], cpu: list[float]
) -> None:
    for _ in range(calls):
        t0, c0 = time.perf_counter(), time.thread_time()
        op(x)
        cpu.append((time.thread_time() - c0) * 1e3)
        wall.append((time.perf_counter() - t0) * 1e3)


def compare(dim: int, length: int, dense: bool = False) -> dict[str, tuple[float, float]]:
    """Median ms of a ParC-H op on a (1, dim, length, length) map: {impl: (wall, thread CPU)}."""
    ops = {impl: ParCConv(dim, "h", length, dense=dense, impl=impl).eval() for impl in IMPLS}
    ops["fft"].load_state_dict(ops["direct"].state_dict())
    x = torch.randn(1, dim, length, length)
    with torch.inference_mode():
        t0 = time.perf_counter()
        for _ in range(3):
            for op in ops.values():
                op(x)
        per_call = (time.perf_counter() - t0) / (3 * len(ops))
        calls = max(2, min(50, int(SLICE_BUDGET_S / max(per_call, 1e-6))))
        wall: dict[str, list[float]] = {impl: [] for impl in IMPLS}
        cpu: dict[str, list[float]] = {impl: [] for impl in IMPLS}
        for _ in range(SLICES):
            for impl, op in ops.items():
                _time_calls(op, x, calls, wall[impl], cpu[impl])
    return {i: (statistics.median(wall[i]), statistics.median(cpu[i])) for i in IMPLS}


def _crossover(rows: list[tuple[int, float, float]]) -> str:
    """Where the FFT is faster, from (length, direct, fft) rows."""
    wins = [length for length, d, f in rows if f < d]
    if not wins:
        return "FFT never faster"
    first = min(wins)
    if all(f < d for length, d, f in rows if length >= first):
        return f"FFT faster from L={first} on"
    return f"FFT faster at L in {wins}, direct at the others"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one width, no dense rows")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    print(f"ParC-H op, batch 1, 1 thread, inference mode; torch {torch.__version__}; {cpu_model()}")
    print("median ms per call, wall clock and thread CPU time; x = direct / fft (> 1: FFT faster)")
    print("auto = what impl='auto' picks; ok = it picked the faster one by CPU time\n")
    cases: list[tuple[int, bool, tuple[int, ...]]] = [
        (c, False, LENGTHS) for c in (WIDTHS[1:2] if args.quick else WIDTHS)
    ]
    cases += [] if args.quick else [(c, True, lengths) for c, lengths in DENSE]
    print(
        f"{'op':<16}{'L':>5}{'direct':>9}{'fft':>9}{'x':>7}"
        f"{'cpu direct':>12}{'cpu fft':>9}{'x':>7}{'auto':>8}"
    )
    picked_ok = picked = 0
    for dim, dense, lengths in cases:
        name = f"{'dense' if dense else 'depthwise'} C={dim}"
        rows = []
        for length in lengths:
            t = compare(dim, length, dense)
            (dw, dc), (fw, fc) = t["direct"], t["fft"]
            rows.append((length, dc, fc))
            auto = "fft" if parc_uses_fft("auto", length, dense) else "direct"
            ok = (auto == "fft") == (fc < dc)
            picked, picked_ok = picked + 1, picked_ok + ok
            print(
                f"{name:<16}{length:>5}{dw:>9.3f}{fw:>9.3f}{dw / fw:>6.2f}x"
                f"{dc:>12.3f}{fc:>9.3f}{dc / fc:>6.2f}x{auto:>8} {'ok' if ok else '--'}"
            )
        print(f"{'':<16}crossover: {_crossover(rows)}\n")
    print(
        f"impl='auto': depthwise FFT for L <= {FFT_MAX_SMALL_LENGTH} or L >= {FFT_MIN_LENGTH}, "
        f"dense FFT for L >= {FFT_MIN_LENGTH_DENSE}; faster pick in {picked_ok}/{picked} rows"
    )
    print(f"bench time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
