"""Score fusion for hybrid retrieval: exact values, worked out by hand."""

from __future__ import annotations

import numpy as np

from service.answering.fusion import rrf_fusion, weighted_fusion


def test_weighted_fusion_mixes_cosine_with_keyword_scaled_by_its_best_score() -> None:
    # keyword / 4 = [0, 1, 0.5]; 0.9 * dense + 0.1 * that
    out = weighted_fusion(np.array([0.2, 0.5, 0.1]), np.array([0.0, 4.0, 2.0]), dense_weight=0.9)
    np.testing.assert_allclose(out, [0.18, 0.55, 0.14], rtol=0, atol=1e-12)


def test_weighted_fusion_scales_keyword_by_its_maximum_not_by_min_max() -> None:
    # min-max would turn the lowest keyword score 2 into 0; dividing by the best keeps it at 0.5
    out = weighted_fusion(np.array([0.0, 0.0]), np.array([2.0, 4.0]), dense_weight=0.5)
    np.testing.assert_allclose(out, [0.25, 0.5], rtol=0, atol=1e-12)


def test_weighted_fusion_keeps_dense_cosines_on_their_own_scale() -> None:
    # Min-maxing the cosines would give [0.9, 0.45, 0.0]: a weak best match must stay weak.
    out = weighted_fusion(np.array([0.3, 0.2, 0.1]), np.array([0.0, 0.0, 0.0]), dense_weight=0.9)
    np.testing.assert_allclose(out, [0.27, 0.18, 0.09], rtol=0, atol=1e-12)


def test_weighted_fusion_with_all_zero_keyword_scores_does_not_divide_by_zero() -> None:
    with np.errstate(divide="raise", invalid="raise"):
        out = weighted_fusion(np.array([0.4, 0.6]), np.zeros(2), dense_weight=0.7)
    np.testing.assert_allclose(out, [0.28, 0.42], rtol=0, atol=1e-12)


def test_rrf_fusion_sums_reciprocal_ranks_of_both_lists() -> None:
    # dense ranks: [1, 3, 2]; keyword ranks: [3, 1, 2]
    out = rrf_fusion(np.array([0.9, 0.1, 0.5]), np.array([1.0, 3.0, 2.0]))
    np.testing.assert_allclose(out, [1 / 61 + 1 / 63, 1 / 63 + 1 / 61, 2 / 62], rtol=1e-12)


def test_rrf_fusion_breaks_ties_by_original_position() -> None:
    # Every score tied in both lists: ranks follow the array order, 1, 2, 3, in both.
    out = rrf_fusion(np.array([0.5, 0.5, 0.5]), np.zeros(3))
    np.testing.assert_allclose(out, [2 / 61, 2 / 62, 2 / 63], rtol=1e-12)
    assert list(np.argsort(-out, kind="stable")) == [0, 1, 2]


def test_rrf_fusion_uses_the_k_parameter() -> None:
    dense, keyword = np.array([0.9, 0.1]), np.array([0.9, 0.1])
    np.testing.assert_allclose(rrf_fusion(dense, keyword, k=1), [1 / 2 + 1 / 2, 1 / 3 + 1 / 3], rtol=1e-12)
    np.testing.assert_allclose(rrf_fusion(dense, keyword), [2 / 61, 2 / 62], rtol=1e-12)
