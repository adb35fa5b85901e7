"""The global model's training on too few rows: the blend alone, not a LightGBM failure."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.forecasting.global_model import GlobalModelConfig, train

NAMES = ["a", "b", "c"]


def _part(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(rows)
    return rng.random((rows, len(NAMES)), dtype=np.float32), rng.random(rows)


@pytest.mark.parametrize("rows", [0, 1])
def test_given_at_most_one_training_row_when_trained_then_no_model(rows: int) -> None:
    # One row: LightGBM's bagging (70 %) draws an empty bag and fails with
    # "Check failed: (num_data) > (0)"; a property example with one known target day hit it.
    assert train([_part(rows)], NAMES, GlobalModelConfig(rounds=3, threads=1)) is None


def test_given_two_training_rows_when_trained_then_a_model() -> None:
    model = train([_part(1), _part(1)], NAMES, GlobalModelConfig(rounds=3, threads=1))

    assert model is not None
    # Too few rows to split (min_data_in_leaf): LightGBM stops at one constant tree.
    assert model.base.num_trees() == 1
