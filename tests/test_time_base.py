from __future__ import annotations

import pytest

from archlab.predict.profile import Anchor
from archlab.predict.time_base import compare_to_profile, pick_anchors


def test_a_common_slowdown_is_recovered_exactly() -> None:
    base = compare_to_profile([10.0, 40.0, 160.0], [12.0, 48.0, 192.0])
    assert base.factor == pytest.approx(1.2)
    assert base.ci_rel == pytest.approx(0.0, abs=1e-12)  # every anchor agrees
    assert base.anchors == 3
    assert base.to_profile_time(60.0) == pytest.approx(50.0)


def test_the_factor_is_a_geometric_mean_with_an_interval() -> None:
    base = compare_to_profile([10.0, 10.0], [9.0, 10.0 / 0.9])  # ×0.9 and ×1/0.9 cancel
    assert base.factor == pytest.approx(1.0)
    assert base.ci_rel > 0.1
    assert compare_to_profile([10.0], [11.0]).ci_rel == float("inf")  # one anchor: no interval


@pytest.mark.parametrize(
    ("then", "now", "message"),
    [([], [], "matching"), ([1.0], [1.0, 2.0], "matching"), ([1.0], [0.0], "positive")],
)
def test_bad_anchor_figures_are_refused(then: list[float], now: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare_to_profile(then, now)


def test_anchors_are_picked_across_the_range_of_latencies() -> None:
    anchors = [Anchor({"i": i}, float(ms)) for i, ms in enumerate([5, 1, 9, 3, 7, 2, 8])]
    assert [a.ms for a in pick_anchors(anchors, 3)] == [1.0, 5.0, 9.0]
    assert [a.ms for a in pick_anchors(anchors, 1)] == [1.0]
    assert len(pick_anchors(anchors, 20)) == 7
