"""The dashboard's pure helpers: number formats, fitted axes, off-scale markers, categories, the
importance warning and the page furniture."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from PIL import Image

from archlab.dashboard import axes, units
from archlab.dashboard import health as study_health
from archlab.dashboard.data import count_text, to_second
from archlab.dashboard.page import breakable_path, favicon


@pytest.mark.parametrize(
    ("value", "digits", "shown"),
    [
        (0.0034013, 3, "0.00340"),
        (2.7361, 3, "2.74"),
        (1234.5, 3, "1230"),
        (-0.3823, 2, "-0.38"),
        (9.996, 3, "10.0"),
        (0.0, 3, "0"),
        (3e-7, 3, "3.00e-07"),
        (None, 3, "–"),
        (float("nan"), 3, "–"),
    ],
)
def test_sig_keeps_a_few_significant_figures(value: float | None, digits: int, shown: str) -> None:
    assert units.sig(value, digits) == shown


def test_every_metric_has_one_format_matching_the_cli() -> None:
    assert units.fmt_metric("macs", 2.5e9) == "2.50G"  # not plotly's 2.5B
    assert units.fmt_metric("params", 4800) == "4.80k"  # not 4.8K
    assert units.fmt_metric("peak_memory_bytes", 12_345_678) == "12.35MB"
    assert units.fmt_metric("latency_ms", 4.371) == "4.37 ms"
    assert units.fmt_metric("naswot", 35.3412) == "35.34"
    assert units.fmt_metric("val_acc", 0.41234) == "0.412"
    assert units.fmt_metric("naswot", None) == "–"
    assert units.tick_style("peak_memory_bytes") == {"exponentformat": "SI", "ticksuffix": "B"}


def test_within_noise_compares_a_step_with_the_spread() -> None:
    assert units.within_noise(0.2, 0.3) and not units.within_noise(0.4, 0.3)
    assert not units.within_noise(None, 0.3) and not units.within_noise(0.2, float("nan"))


def test_fitted_range_pads_the_values_and_works_in_log_units() -> None:
    lo, hi = axes.fitted_range([10.0, 20.0, float("nan")])
    assert lo == pytest.approx(9.4) and hi == pytest.approx(20.6)
    lo, hi = axes.fitted_range([10.0, 1000.0], log=True)
    assert lo == pytest.approx(1 - 0.12) and hi == pytest.approx(3 + 0.12)
    assert axes.fitted_range([]) is None and axes.fitted_range([-1.0], log=True) is None
    lo, hi = axes.fitted_range([5.0])
    assert lo < 5.0 < hi  # a single value still gets a range


def _points(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["name", "latency_ms", "naswot"])


def test_off_scale_places_markers_on_the_edge_they_lie_beyond() -> None:
    points = _points([("in", 15.0, 41.0), ("slow", 355.0, 41.0), ("low", 12.0, 30.0)])
    found = axes.off_scale(points, "latency_ms", "naswot", (9.0, 21.0), (39.0, 43.0))
    by_name = {m.name: m for m in found}
    assert set(by_name) == {"slow", "low"}
    slow, low = by_name["slow"], by_name["low"]
    assert slow.symbol == "triangle-right" and slow.text == "355.00 ms →"
    assert 20.0 < slow.x < 21.0 and slow.y == 41.0
    assert low.symbol == "triangle-down" and low.text == "30.00 ↓" and 39.0 < low.y < 39.5


def test_off_scale_markers_on_one_edge_do_not_overlap() -> None:
    points = _points([("a", 100.0, 41.0), ("b", 300.0, 41.05), ("c", 500.0, 50.0)])
    found = axes.off_scale(points, "latency_ms", "naswot", (9.0, 21.0), (39.0, 43.0))
    right = sorted(m.y for m in found if m.symbol == "triangle-right")
    assert right[1] - right[0] >= 0.1 * 4 - 1e-9
    corner = next(m for m in found if m.name == "c")
    assert corner.symbol == "triangle-ne" and corner.text == "500.00 ms<br>50.00 ↗"
    assert all(39.0 < m.y < 43.0 for m in found)


def test_gutters_add_a_strip_only_on_the_sides_points_lie_beyond() -> None:
    points = _points([("slow", 355.0, 41.0), ("in", 15.0, 40.0)])
    x_range, y_range = axes.with_gutters(points, "latency_ms", "naswot", (9.0, 21.0), (39.0, 43.0))
    assert x_range == (9.0, pytest.approx(21.0 + 0.16 * 12)) and y_range == (39.0, 43.0)
    (marker,) = axes.off_scale(points, "latency_ms", "naswot", x_range, y_range)
    assert marker.x > 21.0  # in the strip, right of every trial


def test_off_scale_on_a_log_axis_returns_data_units() -> None:
    points = _points([("far", 10_000.0, 41.0)])
    (marker,) = axes.off_scale(points, "latency_ms", "naswot", (1.0, 2.0), (39.0, 43.0), x_log=True)
    assert 10.0 < marker.x < 100.0


def test_knobs_with_few_values_are_categories_in_numeric_order() -> None:
    assert axes.is_categorical(pd.Series([2, 10, 2]))
    assert axes.is_categorical(pd.Series(["ccf", "ccf_plus"]))
    assert not axes.is_categorical(pd.Series(range(20)))
    assert axes.categories(pd.Series([10.0, 2.0, None, 2.0])) == ["2", "10"]
    assert axes.categories(pd.Series(["b", "a"])) == ["a", "b"]


def test_importance_warns_below_fifty_trials_and_top_knobs_follow_it() -> None:
    assert "rests on 30 complete trials" in (study_health.importance_warning(30) or "")
    assert study_health.importance_warning(50) is None
    ranking = pd.Series({"c": 0.5, "gone": 0.3, "a": 0.2})
    varied = ["a", "b", "c", "d"]
    assert study_health.top_knobs(ranking, varied, n=3) == ["c", "a", "b"]
    assert study_health.top_knobs(None, varied, n=2) == ["a", "b"]


def test_a_count_the_trial_did_not_store_reads_as_a_dash() -> None:
    assert count_text(30) == "30" and count_text(None) == "–" and count_text(float("nan")) == "–"


def test_last_finished_is_shown_to_the_second() -> None:
    assert to_second("2024-12-06 02:41:33.123456") == "2024-12-06 02:41:33"
    assert to_second(None) is None


def test_storage_path_wraps_only_at_separators_and_is_escaped() -> None:
    shown = breakable_path("sqlite:////tmp/a<b>/dash board.db")
    assert "dash board.db" in shown and "&lt;b&gt;" in shown
    assert "sqlite:<wbr>/<wbr>/<wbr>/<wbr>/<wbr>tmp/<wbr>" in shown
    assert "keep-all" in shown


def test_favicon_is_a_small_png_made_here() -> None:
    image = Image.open(io.BytesIO(favicon()))
    assert image.format == "PNG" and image.size == (32, 32)


def test_presets_just_beside_the_trials_stretch_the_axis_far_ones_do_not() -> None:
    trials = [10.0, 60.0]
    assert axes.near([70.0, 355.0, 5.0], trials) == [70.0, 5.0]  # reach: half the span, 25 ms
    assert axes.near([120.0, 5000.0], trials, log=True) == [120.0]  # reach in log units
    assert axes.near([1.0], []) == []
