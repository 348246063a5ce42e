"""The knob ridge (archlab.estimate.surrogate): encoding, a known linear answer, serialisation."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest
from scipy.stats import spearmanr

from archlab.estimate.surrogate import KnobRidge, encode, fit_knob_ridge


def _archs(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "depth": rng.choice([1, 2, 3, 4]),
            "width": rng.choice([32, 64, 96]),
            "mixer": rng.choice(["plg", "parc", "none"]),
            "tokens": rng.choice([None, 4, 6]),
            "fixed": "same",
        }
        for _ in range(n)
    ]


def _truth(arch: dict[str, Any]) -> float:
    """A known answer: depth and the mixer matter, width barely, tokens not at all."""
    return 0.80 + 0.01 * arch["depth"] + 0.02 * (arch["mixer"] == "plg") + 0.0001 * arch["width"]


def test_encoding_numbers_unset_flags_and_one_hot_choices() -> None:
    archs = [
        {"d": 1, "m": "a", "t": None, "c": 7},
        {"d": 3, "m": "b", "t": 4, "c": 7},
        {"d": 2, "m": "a", "t": 6, "c": 7},
    ]
    x, columns = encode(archs)
    names = [(c.knob, c.kind, c.level) for c in columns]
    assert names == [
        ("d", "number", ""),
        ("m", "level", '"a"'),
        ("m", "level", '"b"'),
        ("t", "number", ""),
        ("t", "unset", ""),
    ]  # the constant knob c says nothing and is dropped
    assert x.tolist() == [[1, 1, 0, 5, 1], [3, 0, 1, 4, 0], [2, 1, 0, 6, 0]]
    unseen, _ = encode([{"d": 9, "m": "new", "t": None}], columns)
    assert unseen.tolist() == [[9, 0, 0, 5, 1]]  # a value never fitted: no level column fires


def test_fit_ranks_held_out_archs_of_a_known_linear_truth() -> None:
    train, test = _archs(40, seed=1), _archs(30, seed=2)
    model = fit_knob_ridge(train, [_truth(a) for a in train])
    predicted = model.predict(test)
    assert spearmanr(predicted, [_truth(a) for a in test]).statistic > 0.95
    heaviest = [name for name, _ in model.weights()[:2]]
    assert set(heaviest) == {"depth", "mixer=plg"}
    assert model.archs == 40


def test_a_model_round_trips_through_json() -> None:
    archs = _archs(20)
    model = fit_knob_ridge(archs, [_truth(a) for a in archs])
    again = KnobRidge.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model
    assert np.array_equal(again.predict(archs), model.predict(archs))


def test_a_fit_refuses_too_few_archs_or_mismatched_accuracies() -> None:
    archs = _archs(5)
    with pytest.raises(ValueError, match="5 archs but 4 accuracies"):
        fit_knob_ridge(archs, [0.9] * 4)
    with pytest.raises(ValueError, match="3 or more archs, got 2"):
        fit_knob_ridge(archs[:2], [0.9, 0.8])
