"""Tests for the router metrics and reports in training.evaluate."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.evaluate import (
    MIX_FRACTIONS,
    ROUTER_NAME,
    Hull,
    Report,
    aiq,
    apgr,
    cost_ratio_at_quality,
    cost_save,
    cpt,
    evaluate_choices,
    format_report,
    plot_report,
    upper_hull,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

# Three prompts, a cheap and an expensive model. "small" answers prompt 0 only,
# "large" prompts 0 and 1, and neither answers prompt 2.
SCORES = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
COSTS = np.array([[1.0, 10.0], [1.0, 10.0], [1.0, 10.0]]) * 1e-4
NAMES = ["small", "large"]
CHOICES = np.array([[0, 0, 0], [0, 1, 0], [1, 1, 1]])
LABELS = ["λ=1", "λ=0.5", "λ=0"]


def hand_report(**kwargs) -> Report:
    return evaluate_choices(
        SCORES, COSTS, NAMES, CHOICES, point_labels=LABELS, **kwargs
    )


def hull_value(hull: Hull, cost: float) -> float:
    return float(np.interp(cost, hull.costs, hull.qualities))


# Costs and qualities drawn partly from small grids, so that ties are common.
costs_strategy = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]),
    st.floats(0, 10, allow_nan=False, allow_subnormal=False),
)
qualities_strategy = st.one_of(
    st.sampled_from([0.0, 0.25, 0.5, 1.0]),
    st.floats(0, 1, allow_nan=False, allow_subnormal=False),
)
points_strategy = st.lists(
    st.tuples(costs_strategy, qualities_strategy), min_size=1, max_size=25
)


# ------------------------------------------------------------------ upper_hull


def test_upper_hull_drops_ties_and_dominated():
    hull = upper_hull([1, 1, 2, 3, 3], [0.5, 0.7, 0.7, 0.7, 0.9])
    assert hull.costs.tolist() == [1, 3]
    assert hull.qualities.tolist() == [0.7, 0.9]


def test_upper_hull_non_monotonic_curve():
    hull = upper_hull([1, 2, 3, 4], [0.5, 0.9, 0.6, 0.95])
    assert hull.costs.tolist() == [1, 2, 4]
    assert hull.qualities.tolist() == [0.5, 0.9, 0.95]


def test_upper_hull_unsorted_input():
    hull = upper_hull([4, 1, 3, 2], [0.95, 0.5, 0.6, 0.9])
    assert hull.costs.tolist() == [1, 2, 4]
    assert hull.qualities.tolist() == [0.5, 0.9, 0.95]


def test_upper_hull_drops_collinear_points():
    hull = upper_hull([0, 1, 2], [0, 1, 2])
    assert hull.costs.tolist() == [0, 2]


def test_upper_hull_drops_point_below_chord():
    hull = upper_hull([0, 1, 2], [0.0, 0.4, 1.0])
    assert hull.costs.tolist() == [0, 2]
    assert hull.qualities.tolist() == [0.0, 1.0]


def test_upper_hull_single_point():
    hull = upper_hull([0.3], [0.8])
    assert hull.costs.tolist() == [0.3]
    assert hull.qualities.tolist() == [0.8]


def test_upper_hull_ignores_nan_points():
    hull = upper_hull([1, np.nan, 2, 3], [0.5, 0.99, np.nan, 0.6])
    assert hull.costs.tolist() == [1, 3]


def test_upper_hull_empty_when_nothing_finite():
    hull = upper_hull([np.nan], [0.5])
    assert hull.costs.size == 0
    assert hull.qualities.size == 0


def test_upper_hull_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        upper_hull([1, 2, 3], [0.1, 0.2])


@given(points_strategy)
def test_upper_hull_properties(points):
    costs = np.array([p[0] for p in points])
    qualities = np.array([p[1] for p in points])
    hull = upper_hull(costs, qualities)

    assert hull.costs.size >= 1
    assert np.all(np.diff(hull.costs) > 0)
    assert np.all(np.diff(hull.qualities) > 0)

    # Concave: slopes between consecutive vertices never increase.
    slopes = np.diff(hull.qualities) / np.diff(hull.costs)
    assert np.all(np.diff(slopes) <= 1e-9 * (1 + np.abs(slopes[1:])))

    # Every vertex is an input point.
    given_points = set(zip(costs.tolist(), qualities.tolist(), strict=True))
    for vertex in zip(hull.costs.tolist(), hull.qualities.tolist(), strict=True):
        assert vertex in given_points

    # The hull, flat after its last vertex, lies on or above every point.
    for cost, quality in points:
        assert cost >= hull.costs[0]
        assert hull_value(hull, cost) >= quality - 1e-9

    # It starts at the best of the cheapest points and ends at the cheapest of
    # the best points.
    cheapest = costs.min()
    assert hull.costs[0] == cheapest
    assert hull.qualities[0] == qualities[costs == cheapest].max()
    best = qualities.max()
    assert hull.qualities[-1] == best
    assert hull.costs[-1] == costs[qualities == best].min()


@given(points_strategy, st.randoms(use_true_random=False))
def test_upper_hull_order_invariant(points, random):
    shuffled = list(points)
    random.shuffle(shuffled)
    first = upper_hull([p[0] for p in points], [p[1] for p in points])
    second = upper_hull([p[0] for p in shuffled], [p[1] for p in shuffled])
    assert first.costs.tolist() == second.costs.tolist()
    assert first.qualities.tolist() == second.qualities.tolist()


# ------------------------------------------------------------------------ aiq


def test_aiq_hand_computed():
    # Hull (1, 1/3) -> (4, 2/3), then flat to 10: area 1.5 + 4 over a range of 9.
    result = aiq([1, 4, 10], [1 / 3, 2 / 3, 2 / 3], cost_range=(1, 10))
    assert result == pytest.approx(5.5 / 9)


def test_aiq_default_range_is_own_costs():
    assert aiq([1, 4, 10], [1 / 3, 2 / 3, 2 / 3]) == pytest.approx(5.5 / 9)


def test_aiq_zero_below_cheapest_point():
    assert aiq([2.0], [0.6], cost_range=(0.0, 4.0)) == pytest.approx(0.3)


def test_aiq_flat_after_last_point():
    assert aiq([1.0], [0.5], cost_range=(1.0, 3.0)) == pytest.approx(0.5)


def test_aiq_empty_range_takes_point_value():
    assert aiq([1.0, 1.0], [0.2, 0.7]) == pytest.approx(0.7)


def test_aiq_truncates_at_range_end():
    # The hull rises from 0 at cost 1 to 0.5 at cost 2, so its mean is 0.25.
    assert aiq([1.0, 3.0], [0.0, 1.0], cost_range=(1.0, 2.0)) == pytest.approx(0.25)


def test_aiq_non_monotonic_uses_hull():
    # The dip at cost 3 is dominated by the point at cost 2.
    result = aiq([1, 2, 3, 4], [0.5, 0.9, 0.6, 0.9], cost_range=(1, 4))
    assert result == pytest.approx((0.7 * 1 + 0.9 * 2) / 3)


def test_aiq_none_without_finite_points():
    assert aiq([np.nan], [np.nan], cost_range=(0, 1)) is None


@pytest.mark.parametrize("cost_range", [(2.0, 1.0), (0.0, math.inf)])
def test_aiq_invalid_range(cost_range):
    with pytest.raises(ValueError, match="cost_range"):
        aiq([1.0], [0.5], cost_range=cost_range)


@given(points_strategy, points_strategy)
def test_aiq_more_points_never_lower(points, extra):
    low, high = 0.0, 10.0
    base = aiq([p[0] for p in points], [p[1] for p in points], cost_range=(low, high))
    both = points + extra
    more = aiq([p[0] for p in both], [p[1] for p in both], cost_range=(low, high))
    assert more >= base - 1e-12


@given(points_strategy, st.floats(0, 0.5))
def test_aiq_dominating_router_not_lower(points, lift):
    costs = [p[0] for p in points]
    qualities = [p[1] for p in points]
    raised = [min(1.0, q + lift) for q in qualities]
    cheaper = [c / 2 for c in costs]
    base = aiq(costs, qualities, cost_range=(0.0, 10.0))
    assert aiq(costs, raised, cost_range=(0.0, 10.0)) >= base - 1e-12
    assert aiq(cheaper, qualities, cost_range=(0.0, 10.0)) >= base - 1e-12


@given(points_strategy)
def test_aiq_between_zero_and_max_quality(points):
    result = aiq([p[0] for p in points], [p[1] for p in points], cost_range=(0, 10))
    assert 0.0 <= result <= max(p[1] for p in points) + 1e-12


# --------------------------------------------------------------- apgr and cpt

HAND_GAP = {"weak_quality": 1 / 3, "strong_quality": 2 / 3}
HAND_SHARES = [0.0, 1 / 3, 1.0]
HAND_QUALITIES = [1 / 3, 2 / 3, 2 / 3]


def test_apgr_hand_computed():
    # PGR rises from 0 to 1 over [0, 1/3] and stays at 1: area 1/6 + 2/3.
    assert apgr(HAND_SHARES, HAND_QUALITIES, **HAND_GAP) == pytest.approx(5 / 6)


def test_cpt_hand_computed():
    assert cpt(HAND_SHARES, HAND_QUALITIES, 50, **HAND_GAP) == pytest.approx(1 / 6)
    assert cpt(HAND_SHARES, HAND_QUALITIES, 80, **HAND_GAP) == pytest.approx(0.8 / 3)


def test_apgr_straight_line_is_half():
    gap = {"weak_quality": 0.4, "strong_quality": 0.8}
    assert apgr([0, 0.5, 1], [0.4, 0.6, 0.8], **gap) == pytest.approx(0.5)
    assert cpt([0, 1], [0.4, 0.8], 50, **gap) == pytest.approx(0.5)


def test_apgr_non_monotonic_uses_hull():
    shares = [0.0, 0.3, 0.6, 1.0]
    qualities = [0.4, 0.9, 0.5, 0.8]
    gap = {"weak_quality": 0.4, "strong_quality": 0.8}
    # The hull reaches PGR 1.25 at share 0.3 and stays there.
    assert apgr(shares, qualities, **gap) == pytest.approx(0.3 * 0.625 + 0.7 * 1.25)
    assert cpt(shares, qualities, 50, **gap) == pytest.approx(0.12)


def test_apgr_none_when_gap_is_zero():
    gap = {"weak_quality": 0.5, "strong_quality": 0.5}
    assert apgr([0, 1], [0.5, 0.5], **gap) is None
    assert cpt([0, 1], [0.5, 0.5], 50, **gap) is None


def test_cpt_none_when_never_reached():
    gap = {"weak_quality": 0.4, "strong_quality": 0.8}
    assert cpt([0, 1], [0.4, 0.5], 80, **gap) is None


def test_cpt_none_beyond_full_share():
    gap = {"weak_quality": 0.4, "strong_quality": 0.8}
    assert cpt([0, 2], [0.4, 0.8], 80, **gap) is None


def test_cpt_negative_share_raised_to_zero():
    gap = {"weak_quality": 0.4, "strong_quality": 0.8}
    assert cpt([-0.2, 1], [0.9, 0.9], 50, **gap) == 0.0


@given(
    st.lists(st.tuples(st.floats(1, 5), st.floats(0, 1)), min_size=1, max_size=15),
    st.floats(0, 0.5),
    st.floats(0.51, 1),
)
def test_apgr_matches_aiq_on_weak_strong_range(points, weak_quality, strong_quality):
    weak_cost, strong_cost = 1.0, 5.0
    costs = np.array([p[0] for p in points])
    qualities = np.array([p[1] for p in points])
    shares = (costs - weak_cost) / (strong_cost - weak_cost)
    gap = {"weak_quality": weak_quality, "strong_quality": strong_quality}

    result = apgr(shares, qualities, **gap)
    mean_quality = aiq(costs, qualities, cost_range=(weak_cost, strong_cost))
    expected = (mean_quality - weak_quality) / (strong_quality - weak_quality)
    assert result == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------- cost_save and cost ratio


def test_cost_save_and_ratio_hand_computed():
    hull = upper_hull([1.0, 4.0], [0.3, 0.9])
    assert cost_save(hull, 0.9, 10.0) == pytest.approx(0.6)
    assert cost_ratio_at_quality(hull, 0.9, 10.0) == pytest.approx(2.5)


def test_cost_save_interpolates_on_hull():
    hull = upper_hull([1.0, 4.0], [0.3, 0.9])
    assert cost_save(hull, 0.6, 10.0) == pytest.approx(0.75)
    assert cost_ratio_at_quality(hull, 0.6, 10.0) == pytest.approx(4.0)


def test_cost_save_negative_above_reference():
    hull = upper_hull([1.0, 20.0], [0.5, 0.9])
    assert cost_save(hull, 0.9, 10.0) == pytest.approx(-1.0)
    assert cost_ratio_at_quality(hull, 0.9, 10.0) == pytest.approx(0.5)


def test_cost_save_none_when_never_reached():
    hull = upper_hull([1.0, 4.0], [0.3, 0.8])
    assert cost_save(hull, 0.9, 10.0) is None
    assert cost_ratio_at_quality(hull, 0.9, 10.0) is None


def test_cost_save_reached_at_zero_cost():
    hull = upper_hull([0.0], [0.9])
    assert cost_save(hull, 0.9, 10.0) == 1.0
    assert cost_ratio_at_quality(hull, 0.9, 10.0) == math.inf


def test_cost_save_none_for_zero_reference():
    hull = upper_hull([0.0], [0.9])
    assert cost_save(hull, 0.9, 0.0) is None
    assert cost_ratio_at_quality(hull, 0.9, 0.0) is None


# ----------------------------------------------------------- evaluate_choices


def test_evaluate_choices_points_hand_computed():
    report = hand_report()
    points = report.curves[ROUTER_NAME]

    assert [p.label for p in points] == LABELS
    assert [p.quality for p in points] == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert [p.cost for p in points] == pytest.approx([1e-4, 4e-4, 1e-3])
    assert [p.coverage for p in points] == [3, 3, 3]
    assert points[1].shares == pytest.approx({"small": 2 / 3, "large": 1 / 3})
    assert report.n_prompts == 3


def test_evaluate_choices_references_hand_computed():
    report = hand_report()

    assert [m.label for m in report.models] == NAMES
    assert [m.quality for m in report.models] == pytest.approx([1 / 3, 2 / 3])
    assert report.best_model == "large"
    assert report.best_quality == pytest.approx(2 / 3)
    assert report.best_cost == pytest.approx(1e-3)
    assert report.cheapest_model == "small"
    assert report.strong == "large"
    assert report.weak == "small"
    assert report.cost_range == pytest.approx((1e-4, 1e-3))


def test_evaluate_choices_metrics_hand_computed():
    metrics = hand_report().metrics[ROUTER_NAME]

    assert metrics.aiq == pytest.approx(5.5 / 9)
    assert metrics.apgr == pytest.approx(5 / 6)
    assert metrics.cpt50 == pytest.approx(1 / 6)
    assert metrics.cpt80 == pytest.approx(0.8 / 3)
    assert metrics.cost_save == pytest.approx(0.6)
    assert metrics.cost_ratio == pytest.approx(2.5)


def test_oracle_cheapest_correct_model():
    oracle = hand_report().oracle
    # Prompt 0: both correct, so small. Prompt 1: only large. Prompt 2: neither,
    # so the cheapest, small.
    assert oracle.shares == pytest.approx({"small": 2 / 3, "large": 1 / 3})
    assert oracle.quality == pytest.approx(2 / 3)
    assert oracle.cost == pytest.approx(4e-4)
    assert oracle.coverage == 3


def test_oracle_continuous_scores_break_ties_by_cost():
    scores = np.array([[0.2, 0.7, 0.7], [0.9, 0.1, 0.3]])
    costs = np.array([[1.0, 3.0, 2.0], [5.0, 1.0, 1.0]])
    report = evaluate_choices(scores, costs, ["a", "b", "c"], np.array([[0, 0]]))
    assert report.oracle.shares == pytest.approx({"a": 0.5, "b": 0.0, "c": 0.5})
    assert report.oracle.quality == pytest.approx(0.8)
    assert report.oracle.cost == pytest.approx(3.5)


def test_oracle_skips_unknown_answers():
    scores = np.array([[np.nan, 0.0], [1.0, np.nan], [np.nan, np.nan]])
    costs = np.ones((3, 2))
    report = evaluate_choices(scores, costs, ["a", "b"], np.array([[0, 0, 0]]))
    assert report.oracle.coverage == 2
    assert report.oracle.quality == pytest.approx(0.5)


@settings(max_examples=50)
@given(
    st.integers(1, 12),
    st.integers(1, 4),
    st.integers(1, 5),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_oracle_dominates_models_and_routers(
    n_prompts, n_models, n_points, seed, binary
):
    rng = np.random.default_rng(seed)
    scores = rng.uniform(size=(n_prompts, n_models))
    if binary:
        scores = (scores > 0.5).astype(float)
    costs = rng.uniform(0.001, 0.01, size=(n_prompts, n_models))
    choices = rng.integers(0, n_models, size=(n_points, n_prompts))
    names = [f"m{j}" for j in range(n_models)]
    report = evaluate_choices(scores, costs, names, choices)

    for model in report.models:
        assert report.oracle.quality >= model.quality - 1e-12
    for point in report.curves[ROUTER_NAME]:
        assert report.oracle.quality >= point.quality - 1e-12


def test_random_mix_expected_values():
    report = hand_report()
    mix = report.random_mix

    assert [p.label for p in mix] == [f"mix={f:.1f}" for f in MIX_FRACTIONS]
    assert mix[3].quality == pytest.approx(0.7 * (1 / 3) + 0.3 * (2 / 3))
    assert mix[3].cost == pytest.approx(0.7 * 1e-4 + 0.3 * 1e-3)
    assert mix[3].shares == pytest.approx({"small": 0.7, "large": 0.3})
    assert mix[0].cost == report.models[0].cost
    assert mix[-1].quality == report.models[1].quality


def test_random_mix_metrics_are_baseline():
    metrics = hand_report().random_mix_metrics
    assert metrics.apgr == pytest.approx(0.5)
    assert metrics.cpt50 == pytest.approx(0.5)
    assert metrics.cpt80 == pytest.approx(0.8)
    assert metrics.cost_save == pytest.approx(0.0)
    assert metrics.aiq == pytest.approx(0.5)


def test_random_mix_report_deterministic():
    first = hand_report(random_seed=1).to_dict()
    second = hand_report(random_seed=2).to_dict()
    assert first == second


def test_missing_score_excluded_from_point():
    scores = SCORES.copy()
    scores[0, 1] = np.nan
    report = evaluate_choices(scores, COSTS, NAMES, CHOICES)
    all_large = report.curves[ROUTER_NAME][2]
    assert all_large.coverage == 2
    assert all_large.quality == pytest.approx(0.5)
    assert all_large.cost == pytest.approx(1e-3)
    assert all_large.shares["large"] == 1.0


def test_missing_cost_excluded_from_point():
    costs = COSTS.copy()
    costs[1, 1] = np.nan
    report = evaluate_choices(SCORES, costs, NAMES, CHOICES)
    middle = report.curves[ROUTER_NAME][1]
    assert middle.coverage == 2
    assert middle.quality == pytest.approx(0.5)
    assert middle.cost == pytest.approx(1e-4)


def test_missing_answers_logged(caplog):
    scores = SCORES.copy()
    scores[0, 1] = np.nan
    with caplog.at_level("WARNING", logger="training.evaluate"):
        evaluate_choices(scores, COSTS, NAMES, CHOICES)
    assert "lowest coverage is 2 of 3" in caplog.text


def test_uncovered_point_is_null_in_json():
    scores = SCORES.copy()
    scores[:, 1] = np.nan
    report = evaluate_choices(scores, COSTS, NAMES, CHOICES)
    point = report.to_dict()["curves"][ROUTER_NAME][2]
    assert point["coverage"] == 0
    assert point["quality"] is None
    assert point["cost"] is None


def test_extra_routers_get_curves_and_metrics():
    worse = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 1]])
    report = hand_report(extra_routers={"knn": worse})
    assert list(report.curves) == [ROUTER_NAME, "knn"]
    assert list(report.metrics) == [ROUTER_NAME, "knn"]
    assert [p.label for p in report.curves["knn"]] == ["point 0", "point 1", "point 2"]
    assert report.metrics["knn"].aiq < report.metrics[ROUTER_NAME].aiq


def test_single_operating_point():
    report = evaluate_choices(SCORES, COSTS, NAMES, CHOICES[1:2])
    metrics = report.metrics[ROUTER_NAME]
    assert len(report.curves[ROUTER_NAME]) == 1
    # Zero quality below its cost of 4e-4, 2/3 from there to 1e-3.
    assert metrics.aiq == pytest.approx((2 / 3) * 6 / 9)
    assert metrics.cost_save == pytest.approx(0.6)
    assert metrics.cpt50 == pytest.approx(1 / 3)


def test_equal_quality_models_give_no_apgr():
    scores = np.full((3, 2), 0.5)
    report = evaluate_choices(scores, COSTS, NAMES, CHOICES)
    metrics = report.metrics[ROUTER_NAME]
    assert metrics.apgr is None
    assert metrics.cpt50 is None
    assert metrics.cpt80 is None
    assert metrics.aiq == pytest.approx(0.5)
    assert report.best_model == "small"


def test_named_strong_and_weak():
    scores = np.array([[0.2, 0.5, 0.9], [0.2, 0.5, 0.9]])
    costs = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    choices = np.array([[0, 0], [0, 1], [1, 1]])
    report = evaluate_choices(
        scores, costs, ["a", "b", "c"], choices, strong="b", weak="a"
    )
    metrics = report.metrics[ROUTER_NAME]
    assert report.strong == "b"
    assert report.weak == "a"
    assert report.best_model == "c"
    # On the a-b axis the router is the straight line between the two models.
    assert metrics.apgr == pytest.approx(0.5)
    assert metrics.cost_save is None


def test_cost_share_equals_strong_calls_for_two_models():
    rng = np.random.default_rng(3)
    scores = (rng.uniform(size=(50, 2)) < [0.4, 0.8]).astype(float)
    costs = np.tile([0.0002, 0.003], (50, 1))
    choices = rng.integers(0, 2, size=(6, 50))
    choices[0], choices[-1] = 0, 1
    report = evaluate_choices(scores, costs, ["weak", "strong"], choices)
    points = report.curves[ROUTER_NAME]
    gap = {
        "weak_quality": report.models[0].quality,
        "strong_quality": report.models[1].quality,
    }
    strong_calls = [p.shares["strong"] for p in points]
    expected = apgr(strong_calls, [p.quality for p in points], **gap)
    assert report.metrics[ROUTER_NAME].apgr == pytest.approx(expected)


@pytest.mark.parametrize(
    ("scores", "costs", "choices", "error", "match"),
    [
        (
            np.zeros((0, 2)),
            np.zeros((0, 2)),
            np.zeros((1, 0), int),
            ValueError,
            "no prompts",
        ),
        (
            np.zeros((3, 2)),
            np.zeros((3, 3)),
            CHOICES,
            ValueError,
            r"\(3, 2\).*\(3, 3\)",
        ),
        (SCORES, COSTS, np.zeros((2, 4), int), ValueError, r"\(2, 4\).*\(3, 2\)"),
        (SCORES, COSTS, np.array([0, 1, 0]), ValueError, r"choices\[None, :\]"),
        (SCORES, COSTS, CHOICES.astype(float), TypeError, "integer model indices"),
        (SCORES, COSTS, np.array([[0, 2, 0]]), ValueError, "contain 2"),
        (SCORES * 2, COSTS, CHOICES, ValueError, r"\[0, 1\]"),
        (SCORES, -COSTS, CHOICES, ValueError, "at least 0"),
        (SCORES, COSTS + np.inf, CHOICES, ValueError, "finite"),
        (np.full((3, 2), np.nan), COSTS, CHOICES, ValueError, "No model"),
    ],
)
def test_evaluate_choices_invalid_inputs(scores, costs, choices, error, match):
    with pytest.raises(error, match=match):
        evaluate_choices(scores, costs, NAMES, choices)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strong": "huge"}, "Unknown model 'huge'"),
        ({"weak": "tiny"}, "Unknown model 'tiny'"),
        ({"point_labels": ["a"]}, "1 labels"),
        ({"extra_routers": {ROUTER_NAME: CHOICES}}, "invalid name"),
        ({"extra_routers": {"knn": CHOICES[:, :2]}}, "'knn'"),
    ],
)
def test_evaluate_choices_invalid_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        evaluate_choices(SCORES, COSTS, NAMES, CHOICES, **kwargs)


def test_evaluate_choices_invalid_model_names():
    with pytest.raises(ValueError, match="unique"):
        evaluate_choices(SCORES, COSTS, ["a", "a"], CHOICES)
    with pytest.raises(ValueError, match="3 names"):
        evaluate_choices(SCORES, COSTS, ["a", "b", "c"], CHOICES)


def test_strong_without_coverage_rejected():
    scores = SCORES.copy()
    scores[:, 1] = np.nan
    with pytest.raises(ValueError, match="'large' has no prompt"):
        evaluate_choices(scores, COSTS, NAMES, CHOICES, strong="large")


# ------------------------------------------------------ serialization, output


def test_to_json_round_trip():
    report = hand_report(extra_routers={"knn": CHOICES})
    text = report.to_json()
    assert json.loads(text) == report.to_dict()


def test_to_dict_layout():
    data = hand_report().to_dict()
    assert set(data) == {
        "n_prompts", "model_names", "curves", "models", "random_mix", "oracle",
        "metrics", "random_mix_metrics", "best_model", "best_quality", "best_cost",
        "cheapest_model", "strong", "weak", "cost_range",
    }  # fmt: skip
    assert set(data["metrics"][ROUTER_NAME]) == {
        "aiq", "apgr", "cpt50", "cpt80", "cost_save", "cost_ratio",
    }  # fmt: skip
    assert set(data["oracle"]) == {"label", "quality", "cost", "coverage", "shares"}
    assert data["cost_range"] == pytest.approx([1e-4, 1e-3])


def test_to_json_infinite_ratio_is_null():
    # Two free models, each right on one prompt, and a paid one right on both.
    scores = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    costs = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    names = ["free1", "free2", "paid"]
    report = evaluate_choices(scores, costs, names, np.array([[0, 1]]))
    assert report.metrics[ROUTER_NAME].cost_ratio == math.inf
    data = json.loads(report.to_json())
    assert data["metrics"][ROUTER_NAME]["cost_ratio"] is None
    assert data["metrics"][ROUTER_NAME]["cost_save"] == 1.0


def test_format_report_contents():
    text = format_report(hand_report())
    assert "Router 'router'" in text
    assert "Single models" in text
    assert "Random mix of small (cheapest) and large (most accurate)" in text
    assert "Oracle" in text
    assert "λ=0.5" in text
    assert "66.7%" in text
    assert "0.000400" in text
    assert "2.50x" in text


def test_format_report_metric_columns_align():
    lines = format_report(hand_report()).splitlines()
    header = next(line for line in lines if line.strip().startswith("curve"))
    row = next(line for line in lines if line.strip().startswith("router "))
    assert header.index("AIQ") + len("AIQ") == row.index("61.1%") + len("61.1%")


def test_format_report_small_costs_keep_digits():
    costs = np.array([[2.1e-4, 3.0e-3]] * 3)
    report = evaluate_choices(SCORES, costs, NAMES, CHOICES)
    text = format_report(report)
    assert "0.000210" in text
    assert "0.003000" in text


def test_format_report_undefined_metrics_dashed():
    scores = np.full((3, 2), 0.5)
    text = format_report(evaluate_choices(scores, COSTS, NAMES, CHOICES))
    row = next(line for line in text.splitlines() if line.strip().startswith("router "))
    assert row.split()[2] == "-"


def test_plot_report_writes_png(tmp_path):
    report = hand_report(extra_routers={"knn": CHOICES[::-1]})
    result = plot_report(report, tmp_path / "plot.png")
    assert result == tmp_path / "plot.png"
    assert result.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_report_zero_costs(tmp_path):
    costs = COSTS.copy()
    costs[:, 0] = 0.0
    some_free = evaluate_choices(SCORES, costs, NAMES, CHOICES)
    assert plot_report(some_free, tmp_path / "some.png").stat().st_size > 0
    all_free = evaluate_choices(SCORES, np.zeros((3, 2)), NAMES, CHOICES)
    assert plot_report(all_free, tmp_path / "all.png").stat().st_size > 0


def test_import_leaves_matplotlib_unloaded():
    code = (
        "import sys, training.evaluate; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
