from __future__ import annotations

import itertools

import numpy as np
import optuna
import pytest

from archlab.study.hypervolume import (
    REFERENCE_TRIALS,
    hypervolume,
    nadir_reference,
    non_dominated,
    record_hypervolume,
    to_minimization,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_two_dimensional_staircase_by_hand() -> None:
    # Boxes [1,4]×[3,4], [2,4]×[2,4], [3,4]×[1,4]: columns of height 1, 2 and 3 → 6.
    assert hypervolume([[1, 3], [2, 2], [3, 1]], reference=[4, 4]) == pytest.approx(6.0)


def test_three_dimensional_overlap_by_hand() -> None:
    # Boxes 2×2×1 and 1×1×2 overlapping in a unit cube: 4 + 2 − 1.
    assert hypervolume([[0, 0, 1], [1, 1, 0]], reference=[2, 2, 2]) == pytest.approx(5.0)


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_matches_counting_dominated_unit_cells(dims: int) -> None:
    side = 5
    rng = np.random.default_rng(dims)
    points = rng.integers(0, side, size=(12, dims))
    points = points[points.sum(1) >= side]  # keep away from the origin so the test has teeth
    cells = np.array(list(itertools.product(range(side), repeat=dims)))
    dominated = sum(bool((points <= c).all(1).any()) for c in cells)
    assert 0 < dominated < side**dims
    assert hypervolume(points, [side] * dims) == pytest.approx(dominated)


def test_points_outside_the_reference_or_not_finite_add_nothing() -> None:
    inside = [[1.0, 1.0]]
    assert hypervolume(inside, [2, 2]) == pytest.approx(1.0)
    assert hypervolume([*inside, [3.0, 0.0], [0.0, 2.0], [np.inf, 0.0]], [2, 2]) == pytest.approx(
        1.0
    )
    assert hypervolume([], [2, 2]) == 0.0


def test_dominated_and_duplicate_points_do_not_change_it() -> None:
    front = [[1, 3], [2, 2], [3, 1]]
    assert hypervolume([*front, [2, 2], [3, 3], [2.5, 2.5]], [4, 4]) == pytest.approx(6.0)
    assert sorted(non_dominated(np.array([*front, [3, 3], [2, 2]])).tolist()) == front


def test_maximised_objectives_are_negated() -> None:
    points = to_minimization([[0.9, 10.0], [0.5, 5.0]], ["maximize", "minimize"])
    assert points.tolist() == [[-0.9, 10.0], [-0.5, 5.0]]
    # accuracy ≥ 0 and cost ≤ 20: (0.9 − 0) × (20 − 10) ∪ (0.5 − 0) × (20 − 5)
    ref = to_minimization([[0.0, 20.0]], ["maximize", "minimize"])[0]
    assert hypervolume(points, ref) == pytest.approx(0.9 * 10 + 0.5 * 5)
    with pytest.raises(ValueError, match="'minimize' or 'maximize'"):
        to_minimization([[1.0]], ["max"])


def test_nadir_reference_adds_a_tenth_of_the_range() -> None:
    ref = nadir_reference([[0.0, 10.0], [2.0, 30.0], [np.inf, 0.0]])
    assert ref.tolist() == pytest.approx([2.2, 32.0])
    with pytest.raises(ValueError, match="at least one finite point"):
        nadir_reference([[np.nan, 1.0]])
    with pytest.raises(ValueError, match="finite vector"):
        hypervolume([[1.0, 1.0]], [np.inf, 2.0])


def test_study_fixes_its_reference_then_records_hypervolume_per_trial() -> None:
    directions = ["maximize", "minimize"]
    study = optuna.create_study(directions=directions, sampler=optuna.samplers.RandomSampler(0))
    recorded: list[float | None] = []

    def objective(trial: optuna.Trial) -> list[float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        values = [x, x**2 + 0.1 * trial.number]
        feasible = trial.number != 3  # one infeasible trial must not count
        trial.set_constraint("c", 0.0 if feasible else 1.0)
        recorded.append(record_hypervolume(trial, values, feasible, directions))
        return values

    study.optimize(objective, n_trials=REFERENCE_TRIALS + 4)
    first = REFERENCE_TRIALS  # trial 3 is infeasible: the 10th feasible point is trial number 10
    assert recorded[:first] == [None] * first
    reference = study.user_attrs["hypervolume_reference"]
    feasible = [t.values for t in study.trials if t.number != 3]
    expected_ref = nadir_reference(to_minimization(feasible[:REFERENCE_TRIALS], directions))
    assert to_minimization([reference["point"]], directions)[0] == pytest.approx(expected_ref)
    assert "first 10 complete feasible trials" in reference["rule"]
    for trial in study.trials[first:]:
        points = [t.values for t in study.trials[: trial.number + 1] if t.number != 3]
        ref = to_minimization([reference["point"]], directions)[0]
        expected = hypervolume(to_minimization(points, directions), ref)
        assert trial.user_attrs["hypervolume"] == pytest.approx(expected)
    values = [t.user_attrs["hypervolume"] for t in study.trials[first:]]
    assert values == sorted(values)  # a front's hypervolume never shrinks
