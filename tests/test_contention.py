from __future__ import annotations

from pathlib import Path

import pytest

from archlab.measurement import contention
from archlab.measurement.contention import (
    ContentionGuard,
    CpuSnapshot,
    foreign_cores,
    machine_ticks,
    steal_share,
)


def test_foreign_cores_subtracts_own_cpu_time() -> None:
    before = CpuSnapshot(busy_s=100.0, own_s=10.0, wall_s=0.0)
    after = CpuSnapshot(busy_s=102.5, own_s=11.0, wall_s=1.0)  # 2.5 s busy, 1 s of it ours
    assert foreign_cores(before, after) == pytest.approx(1.5)


def test_foreign_cores_is_none_without_counters() -> None:
    assert foreign_cores(None, CpuSnapshot(1, 1, 1)) is None


def _fake_snapshots(monkeypatch: pytest.MonkeyPatch, foreign_per_call: list[float]) -> None:
    """Each guarded call sees the given foreign load (cores) over a 1 s window."""
    state = {"t": 0.0, "busy": 0.0, "calls": 0}

    def snapshot() -> CpuSnapshot:
        i = state["calls"] // 2
        if state["calls"] % 2:  # the "after" snapshot of call i
            state["t"] += 1.0
            state["busy"] += foreign_per_call[min(i, len(foreign_per_call) - 1)]
        state["calls"] += 1
        return CpuSnapshot(state["busy"], 0.0, state["t"])

    monkeypatch.setattr(contention, "cpu_snapshot", snapshot)


def test_guard_reruns_a_contaminated_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_snapshots(monkeypatch, [3.0, 0.0])
    calls = []
    guard = ContentionGuard(threads=1, max_foreign_cores=1.25)
    assert guard.run(lambda: calls.append(1) or len(calls)) == 2
    assert guard.reruns == 1 and guard.contaminated == 0


def test_guard_keeps_and_counts_a_slice_contaminated_after_every_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_snapshots(monkeypatch, [3.0])
    calls = []
    guard = ContentionGuard(threads=1, max_foreign_cores=1.25, retries=2)
    guard.run(lambda: calls.append(1))
    assert len(calls) == 3 and guard.reruns == 2 and guard.contaminated == 1
    assert guard.worst_foreign_cores == pytest.approx(3.0)


def test_default_limit_tolerates_one_foreign_core_at_one_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(contention.os, "cpu_count", lambda: 2)
    assert ContentionGuard(threads=1).limit == pytest.approx(1.25)
    assert ContentionGuard(threads=2).limit == pytest.approx(0.25)


def test_disabled_guard_calls_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_snapshots(monkeypatch, [5.0])
    calls = []
    guard = ContentionGuard(enabled=False)
    guard.run(lambda: calls.append(1))
    assert len(calls) == 1 and guard.reruns == 0


def test_steal_share_is_the_steal_part_of_all_cpu_time() -> None:
    before = [100, 0, 50, 800, 0, 0, 0, 50, 0, 0]
    after = [200, 0, 70, 1000, 0, 0, 0, 130, 0, 0]  # +100 user +20 sys +200 idle +80 steal
    assert steal_share(before, after) == pytest.approx(80 / 400)
    assert steal_share(None, after) is None and steal_share(before[:4], after[:4]) is None


def test_machine_ticks_reads_the_cpu_line(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 1 1 1 1 1 1 1 1 1\n")
    assert machine_ticks(str(stat)) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert machine_ticks(str(tmp_path / "missing")) is None
