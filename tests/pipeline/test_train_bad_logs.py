"""Tests of training.train on damaged logs: a clear error, or a counted warning."""

import json
import re
import warnings

import pytest

import router
import training
from tests.bad_logs import (
    ERROR_CASES,
    N_ANSWERS,
    WARNING_CASES,
    changed,
    unanswered_essays,
)
from training.collect import LogDataWarning


def train_recording(options: dict, out):
    """Train and return the result with every warning raised meanwhile."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = training.train(options.pop("logs"), out, track=False, **options)
    return result, record


@pytest.mark.parametrize(("write", "error", "match"), ERROR_CASES.values(),
                         ids=ERROR_CASES.keys())
def test_train_bad_logs_raise(tmp_path, write, error, match):
    options = write(tmp_path)
    out = tmp_path / "out"

    with pytest.raises(error, match=match):
        training.train(options.pop("logs"), out, track=False, **options)

    assert not out.exists()


def test_train_unknown_format(tmp_path, small_logs):
    with pytest.raises(router.LogError, match="unknown log format 'csv'; accepted "
                       "values are 'auto', 'long', 'routerbench', 'routellm'"):
        training.train(small_logs, tmp_path / "out", format="csv", track=False)


@pytest.mark.parametrize(("write", "patterns", "changes", "n_answers"),
                         WARNING_CASES.values(), ids=WARNING_CASES.keys())
def test_train_bad_logs_warn(tmp_path, write, patterns, changes, n_answers):
    """Check that dropped or changed rows warn once per reason, with counts."""
    result, record = train_recording(write(tmp_path), tmp_path / "out")

    messages = [str(w.message) for w in record]
    assert [w.category for w in record] == [LogDataWarning] * len(patterns)
    for pattern, message in zip(patterns, messages):
        assert re.search(pattern, message), (pattern, message)
    manifest = json.loads((result.bundle / "manifest.json").read_text())
    assert manifest["data"]["changes"] == changes
    assert manifest["data"]["n_answers"] == n_answers


def test_train_unanswered_counted(tmp_path):
    """Check that prompts no model answered get the most accurate model, counted."""
    options = changed(unanswered_essays)(tmp_path)

    result, record = train_recording(options, tmp_path / "out")

    manifest = json.loads((result.bundle / "manifest.json").read_text())
    assert record == []
    assert manifest["label_policy"]["n_unanswered"] == 2
    assert manifest["label_policy"]["unanswered"] == "big-model"
    assert manifest["data"]["n_answers"] == N_ANSWERS


def test_train_model_without_answers_left_out(tmp_path):
    result, _ = train_recording(WARNING_CASES["model_without_answers"][0](tmp_path),
                                tmp_path / "out")
    assert router.load(result.bundle).models == ("cheap-model", "mid-model",
                                                 "big-model")


def test_train_partial_prices_costs(tmp_path):
    """Check that priced models take the price file's cost and the rest keep theirs."""
    result, _ = train_recording(WARNING_CASES["price_file_lacks_model"][0](tmp_path),
                                tmp_path / "out")

    costs = router.load(result.bundle).costs
    assert costs["cheap-model"] == 0.5
    assert costs["mid-model"] == 0.5
    assert costs["big-model"] == pytest.approx(0.01)
