"""Check the fallback set ``allowed=``: picks stay inside it and take its best."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import router
from router.cli import main
from router.errors import UnknownModelError
from tests.conftest import SMALL_MODELS, small_log_rows

PROMPTS = sorted({row["prompt"] for row in small_log_rows(5)}) + [
    "",
    "unseen words entirely",
    "Write a python function that adds two numbers.",
]
QUALITIES = [None, 0.3, 0.8, 0.95, 1.0]


@pytest.fixture(scope="module")
def small_router(small_bundle):
    return router.load(small_bundle)


def penalized_scores(r: router.Router, prompt, quality) -> dict:
    """Return the router's own objective per model: score minus cost penalty."""
    scores = r.scores(prompt)
    weight = r.operating_points.for_quality(quality)["cost_weight"]
    top = max(r.costs.values())
    return {name: float(scores[i]) - weight * r.costs[name] / top
            for i, name in enumerate(r.models)}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subset=st.sets(st.sampled_from(list(SMALL_MODELS)), min_size=1),
       prompt=st.sampled_from(PROMPTS), quality=st.sampled_from(QUALITIES))
def test_allowed_pick_is_best_in_set(small_router, subset, prompt, quality):
    """Check that a pick stays in the set and maximizes the router's objective."""
    choice = small_router.pick(prompt, quality=quality, allowed=subset)
    assert choice in subset
    value = penalized_scores(small_router, prompt, quality)
    assert value[choice] >= max(value[name] for name in subset) - 1e-6


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subset=st.sets(st.sampled_from(list(SMALL_MODELS)), min_size=1),
       prompts=st.lists(st.sampled_from(PROMPTS), min_size=1, max_size=6))
def test_allowed_batch_matches_single(small_router, subset, prompts):
    result = small_router.pick_batch(prompts, allowed=subset)
    expected = [small_router.pick(p, allowed=subset) for p in prompts]
    assert result == expected
    assert set(result) <= subset


def test_removing_choice_gives_next_best(small_router):
    """Check that without its first choice a pick falls back to the next best."""
    for prompt in PROMPTS:
        first = small_router.pick(prompt)
        rest = [m for m in small_router.models if m != first]
        value = penalized_scores(small_router, prompt, None)
        expected = max(rest, key=lambda name: value[name])
        assert small_router.pick(prompt, allowed=rest) == expected


def test_allowed_forms(small_router):
    """Check that a name, a list, a set and a generator all work."""
    prompt = PROMPTS[0]
    assert small_router.pick(prompt, allowed="mid-model") == "mid-model"
    assert small_router.pick(prompt, allowed=["mid-model"]) == "mid-model"
    assert small_router.pick(prompt, allowed={"big-model"}) == "big-model"
    assert small_router.pick(prompt, allowed=(m for m in ["cheap-model"])) == (
        "cheap-model")


def test_allowed_all_models_changes_nothing(small_router):
    for prompt in PROMPTS:
        assert small_router.pick(prompt, allowed=small_router.models) == (
            small_router.pick(prompt))


@pytest.mark.parametrize("allowed, error, match", [
    ([], ValueError, "allowed is empty"),
    (set(), ValueError, "allowed is empty"),
    (["gpt-5"], UnknownModelError, r"does not know: \['gpt-5'\]"),
    (["mid-model", "gpt-5"], UnknownModelError, r"does not know: \['gpt-5'\]"),
    ([1], TypeError, "allowed must contain model names"),
    (b"mid-model", TypeError, "allowed must be a model name"),
    (42, TypeError, "allowed must be a model name"),
])
def test_allowed_errors(small_router, allowed, error, match):
    with pytest.raises(error, match=match):
        small_router.pick(PROMPTS[0], allowed=allowed)
    with pytest.raises(error, match=match):
        small_router.pick_batch(PROMPTS[:2], allowed=allowed)


def test_unknown_model_error_lists_models(small_router):
    with pytest.raises(UnknownModelError) as caught:
        small_router.pick(PROMPTS[0], allowed=["gpt-5"])
    for name in SMALL_MODELS:
        assert name in str(caught.value)


def test_cli_allowed(small_bundle, capsys):
    for subset in (["mid-model"], ["cheap-model", "big-model"]):
        status = main(["pick", "--bundle", str(small_bundle), PROMPTS[0],
                       "--allowed", *subset])
        assert status == 0
        assert capsys.readouterr().out.strip() in subset


def test_cli_allowed_unknown_model(small_bundle, capsys):
    status = main(["pick", "--bundle", str(small_bundle), PROMPTS[0],
                   "--allowed", "gpt-5"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert "error: allowed names models this router does not know" in captured.err


def test_cli_allowed_needs_a_model(small_bundle, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["pick", "--bundle", str(small_bundle), PROMPTS[0], "--allowed"])
    assert caught.value.code == 2
    assert "--allowed" in capsys.readouterr().err


def test_scores_are_not_masked(small_router):
    """Check that ``allowed`` changes the choice, never the scores it reports."""
    prompt = PROMPTS[0]
    before = small_router.scores(prompt)
    small_router.pick(prompt, allowed=["mid-model"])
    np.testing.assert_array_equal(small_router.scores(prompt), before)
