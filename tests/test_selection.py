"""The learned unit-selection weights: a data file checked against the features the code computes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service.answering.selection import FEATURES, SHIPPED_SELECTION, SelectionModel


def test_the_shipped_weights_match_the_features_and_say_where_they_came_from() -> None:
    data = json.loads(SHIPPED_SELECTION.read_text(encoding="utf-8"))
    assert tuple(data["features"]) == FEATURES and len(data["coef"]) == len(FEATURES)
    assert data["fitted_on"].startswith("dev")  # fitted on the tuning split, never on test
    assert SelectionModel.load().coef == tuple(data["coef"])


def test_weights_fitted_on_other_features_are_refused_with_the_fix(tmp_path: Path) -> None:
    stale = tmp_path / "selection.json"
    stale.write_text(json.dumps({"features": ["cosine"], "coef": [1.0], "intercept": 0.0}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"python -m evals\.tune selection"):
        SelectionModel.load(stale)


def test_probability_is_the_logistic_of_the_weighted_sum() -> None:
    model = SelectionModel((2.0, -1.0), 0.5)
    np.testing.assert_allclose(model.probability(np.array([[1.0, 1.0], [0.0, 0.5]])),
                               [1 / (1 + np.exp(-1.5)), 0.5], rtol=0, atol=1e-12)
