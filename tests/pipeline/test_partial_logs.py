"""Check that logs in which each prompt went to some models only still train.

A missing answer is unknown, not wrong: the correctness head fits each model on
the prompts it answered, and calibration leaves unknown answers out.
"""

import csv
import json

import numpy as np
import pytest

import router
import training
from tests.conftest import SMALL_MODELS, small_log_rows


def partial_rows(seed: int = 0) -> list[dict]:
    """Return the small log rows with each prompt answered by one or two models.

    big-model, which is always right, answers only a third of the prompts, so a
    reader that took its missing answers for wrong ones would rate it near 1/3.
    """
    rng = np.random.default_rng(seed)
    by_prompt = {}
    for row in small_log_rows():
        by_prompt.setdefault(row["prompt"], []).append(row)
    kept = []
    for i, rows in enumerate(by_prompt.values()):
        small = [r for r in rows if r["model"] != "big-model"]
        kept.append(small[int(rng.integers(len(small)))])
        if i % 3 == 0:
            kept.append(next(r for r in rows if r["model"] == "big-model"))
    return kept


@pytest.fixture(scope="module")
def partial_logs(tmp_path_factory):
    path = tmp_path_factory.mktemp("partial") / "partial.csv"
    rows = partial_rows()
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def partial_bundle(partial_logs, tmp_path_factory):
    out = tmp_path_factory.mktemp("partial-bundle") / "b"
    return training.train(partial_logs, out, track=False).bundle


def test_partial_logs_train(partial_bundle):
    """Check that a partial log gives a bundle that loads and picks."""
    manifest = json.loads((partial_bundle / "manifest.json").read_text())
    assert manifest["data"]["n_prompts"] == 60
    assert manifest["data"]["n_answers"] == len(partial_rows())
    assert manifest["data"]["n_answers"] < 60 * len(SMALL_MODELS)
    assert [m["name"] for m in manifest["models"]] == list(SMALL_MODELS)
    r = router.load(partial_bundle)
    picks = r.pick_batch(sorted({row["prompt"] for row in small_log_rows()}))
    assert set(picks) <= set(SMALL_MODELS)


def test_missing_answers_are_not_wrong(partial_bundle):
    """Check that big-model keeps a high estimate on prompts it never answered."""
    r = router.load(partial_bundle)
    big = r.models.index("big-model")
    unanswered = {row["prompt"] for row in small_log_rows()} - {
        row["prompt"] for row in partial_rows() if row["model"] == "big-model"}
    for prompt in unanswered:
        assert r.scores(prompt)[big] > 0.9


def test_partial_accuracy_counts_answered_only(partial_bundle):
    manifest = json.loads((partial_bundle / "manifest.json").read_text())
    accuracy = {m["name"]: m["accuracy"] for m in manifest["models"]}
    assert accuracy["big-model"] == 1.0


def test_partial_validation_arrays_mark_unknown(partial_bundle):
    """Check that unknown answers are NaN in the stored validation arrays."""
    scores = np.load(partial_bundle / "validation_scores.npy")
    costs = np.load(partial_bundle / "validation_costs.npy")
    assert np.isnan(scores).any()
    np.testing.assert_array_equal(np.isnan(scores), np.isnan(costs))
    assert (~np.isnan(scores)).sum(axis=1).min() >= 1


def test_partial_cheap_model_learns_math(partial_bundle):
    """Check that a model answered on part of a topic still learns the topic."""
    r = router.load(partial_bundle)
    cheap = r.models.index("cheap-model")
    math = r.scores("What is 40 plus 2? Give only the number.")[cheap]
    essay = r.scores("Write a careful essay on the history of bridge number 99 "
                     "and its 7 arches.")[cheap]
    assert math > essay


def test_cli_train_partial_logs(partial_logs, tmp_path, capsys):
    from router.cli import main

    status = main(["train", "--logs", str(partial_logs), "--out", str(tmp_path / "b"),
                   "--no-track", "--quiet"])
    assert status == 0
    assert "AIQ" in capsys.readouterr().out
