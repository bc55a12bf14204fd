"""Check ``Router.explain`` and ``router pick --explain``."""

import numpy as np
import pytest

import router
from router.cli import main
from tests.conftest import SMALL_MODELS

PROMPTS = ["What is 3 plus 4? Give only the number.",
           "Write a python function that returns the 2th item of a list of 4 items.",
           "Write a careful essay on the history of bridge number 7 and its 3 arches."]


@pytest.fixture(scope="module")
def small_router(small_bundle):
    return router.load(small_bundle)


@pytest.mark.parametrize("quality", [None, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_explain_matches_pick(small_router, prompt, quality):
    result = small_router.explain(prompt, quality=quality)
    assert result["model"] == small_router.pick(prompt, quality=quality)


def test_explain_scores_and_costs(small_router):
    """Check that each model's entry has the router's score and bundle cost."""
    result = small_router.explain(PROMPTS[1])
    assert [m["name"] for m in result["models"]] == list(SMALL_MODELS)
    np.testing.assert_allclose([m["score"] for m in result["models"]],
                               small_router.scores(PROMPTS[1]))
    assert [m["cost_usd"] for m in result["models"]] == list(SMALL_MODELS.values())
    assert result["bundle_id"] == small_router.bundle_id


def test_explain_operating_point(small_router):
    for quality in (None, 0.5, 1.0):
        result = small_router.explain(PROMPTS[0], quality=quality)
        assert result["operating_point"] == small_router.operating_points.for_quality(
            quality)


def test_explain_allowed(small_router):
    result = small_router.explain(PROMPTS[2], allowed=["cheap-model", "mid-model"])
    assert result["model"] in {"cheap-model", "mid-model"}
    assert len(result["models"]) == 3


def test_explain_returns_copy_of_point(small_router):
    """Check that changing the explanation leaves the router's point alone."""
    result = small_router.explain(PROMPTS[0])
    result["operating_point"]["cost_weight"] = -1.0
    assert small_router.operating_points.for_quality(None)["cost_weight"] >= 0


def test_explain_invalid_quality(small_router):
    with pytest.raises(ValueError, match="quality must be between 0 and 1.5"):
        small_router.explain(PROMPTS[0], quality=2.0)


def test_cli_explain(small_bundle, small_router, capsys):
    """Check that `router pick --explain` prints the choice, point and table."""
    status = main(["pick", "--bundle", str(small_bundle), PROMPTS[1], "--explain",
                   "--quality", "0.9"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    expected = small_router.explain(PROMPTS[1], quality=0.9)
    assert lines[0] == expected["model"]
    weight = expected["operating_point"]["cost_weight"]
    assert lines[1].startswith(f"operating point: cost weight {weight:.4g}")
    assert lines[2].split() == ["model", "score", "cost/request"]
    rows = {line.split()[0]: line for line in lines[3:]}
    assert set(rows) == set(SMALL_MODELS)
    for m in expected["models"]:
        assert f"{m['score']:.3f}" in rows[m["name"]]
        assert f"${m['cost_usd']:.6f}" in rows[m["name"]]
    marked = [name for name, line in rows.items() if line.endswith(" <")]
    assert marked == [expected["model"]]


def test_cli_explain_allowed(small_bundle, capsys):
    status = main(["pick", "--bundle", str(small_bundle), PROMPTS[2], "--explain",
                   "--allowed", "cheap-model"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines[0] == "cheap-model"
    assert [line for line in lines if line.endswith(" <")][0].startswith("cheap-model")
