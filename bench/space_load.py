"""How long loading a space file takes: parsing, bounds checks and validating every combination.

Times :func:`archlab.space.load_space_text` (uncached) on every shipped space file and on the
largest file the bounds allow (four knobs of 256 choices each), ``--repeats`` times each, and prints
the median and the range in milliseconds. The tests only guard against a load that hangs
(``tests/test_space_bounds.py``, ``tests/test_family_contract.py``); the figures are here.

Run: ``.venv/bin/python bench/space_load.py`` (seconds).
"""

from __future__ import annotations

import argparse
import statistics
import time

from archlab.space import SPACES_DIR, list_spaces, load_space_text

BASE = "family: plgvit\nbase: lw_plgvit_a\n"


def _largest_allowed() -> str:
    ratios = ", ".join(str(1 + i / 256) for i in range(256))
    return BASE + "choices:\n" + "".join(f"  stages.{s}.mlp_ratio: [{ratios}]\n" for s in range(4))


def _times_ms(text: str, name: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        load_space_text(text, name)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cases = {name: (SPACES_DIR / f"{name}.yaml").read_text() for name in list_spaces()}
    cases["largest allowed (4 × 256 choices)"] = _largest_allowed()
    print(f"{'space file':<36} {'median ms':>10} {'range ms':>16}")
    for name, text in cases.items():
        ms = _times_ms(text, name.split()[0], args.repeats)
        span = f"{min(ms):.0f}–{max(ms):.0f}"
        print(f"{name:<36} {statistics.median(ms):>10.0f} {span:>16}")


if __name__ == "__main__":
    main()
