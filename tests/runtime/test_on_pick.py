"""Check the ``on_pick`` callback: its records, its cost when off, its failures."""

import json
import logging

import numpy as np
import pytest

import router
from router import PickRecord
from router.cli import main

PROMPTS = ["What is 3 plus 4? Give only the number.",
           "Write a python function that returns the 2th item of a list of 4 items.",
           "Write a careful essay on the history of bridge number 7 and its 3 arches."]


def test_on_pick_off_by_default(small_bundle):
    r = router.load(small_bundle)
    assert r.on_pick is None
    assert r.on_pick_errors == 0


def test_record_fields(small_bundle):
    """Check that a record names the model, scores, point, bundle and set."""
    records = []
    r = router.load(small_bundle, on_pick=records.append)
    choice = r.pick(PROMPTS[0], quality=0.9, allowed=["mid-model", "cheap-model"])

    assert len(records) == 1
    record = records[0]
    assert isinstance(record, PickRecord)
    assert record.model == choice
    assert list(record.scores) == list(r.models)
    np.testing.assert_allclose(list(record.scores.values()), r.scores(PROMPTS[0]))
    assert record.cost_usd == r.costs[choice]
    assert record.cost_weight == r.operating_points.for_quality(0.9)["cost_weight"]
    assert record.quality == 0.9
    assert record.bundle_id == r.bundle_id
    assert record.allowed == ("cheap-model", "mid-model")
    assert record.time > 0


def test_record_default_quality(small_bundle):
    records = []
    r = router.load(small_bundle, on_pick=records.append)
    r.pick(PROMPTS[0])
    assert records[0].quality == r.operating_points.default_quality
    assert records[0].allowed is None


def test_batch_records_one_per_prompt(small_bundle):
    records = []
    r = router.load(small_bundle)
    r.on_pick = records.append
    result = r.pick_batch(PROMPTS, quality=1.0)
    assert [record.model for record in records] == result
    for record, prompt in zip(records, PROMPTS):
        np.testing.assert_allclose(list(record.scores.values()), r.scores(prompt))


def test_record_does_not_change_picks(small_bundle):
    plain = router.load(small_bundle)
    recorded = router.load(small_bundle, on_pick=lambda record: None)
    for quality in (None, 0.5, 1.0):
        assert recorded.pick_batch(PROMPTS, quality=quality) == plain.pick_batch(
            PROMPTS, quality=quality)
        for prompt in PROMPTS:
            assert recorded.pick(prompt, quality=quality) == plain.pick(
                prompt, quality=quality)


def test_record_with_generator_allowed(small_bundle):
    """Check that an iterator of names is read once for both pick and record."""
    records = []
    r = router.load(small_bundle, on_pick=records.append)
    choice = r.pick(PROMPTS[2], allowed=(name for name in ["big-model", "mid-model"]))
    assert choice in {"big-model", "mid-model"}
    assert records[0].allowed == ("big-model", "mid-model")


def test_empty_batch_records_nothing(small_bundle):
    records = []
    r = router.load(small_bundle, on_pick=records.append)
    assert r.pick_batch([]) == []
    assert records == []


def test_failing_callback_logged_once(small_bundle, caplog):
    """Check that a raising callback neither breaks picks nor floods the log."""
    def fail(record):
        raise RuntimeError("audit store is down")

    plain = router.load(small_bundle)
    r = router.load(small_bundle, on_pick=fail)
    with caplog.at_level(logging.ERROR, logger="router"):
        result = [r.pick(prompt) for prompt in PROMPTS]
        result_batch = r.pick_batch(PROMPTS)
    assert result == plain.pick_batch(PROMPTS)
    assert result_batch == result
    assert r.on_pick_errors == 6
    logged = [rec for rec in caplog.records if "on_pick callback" in rec.getMessage()]
    assert len(logged) == 1
    assert "audit store is down" in logged[0].exc_text


def test_new_failing_callback_logged_again(small_bundle, caplog):
    def fail(record):
        raise ValueError("first")

    def fail_too(record):
        raise ValueError("second")

    r = router.load(small_bundle, on_pick=fail)
    with caplog.at_level(logging.ERROR, logger="router"):
        r.pick(PROMPTS[0])
        r.pick(PROMPTS[0])
        r.on_pick = fail_too
        r.pick(PROMPTS[0])
    logged = [rec for rec in caplog.records if "on_pick callback" in rec.getMessage()]
    assert len(logged) == 2


def test_errors_in_pick_still_raise(small_bundle):
    """Check that a callback does not hide errors of the pick itself."""
    records = []
    r = router.load(small_bundle, on_pick=records.append)
    with pytest.raises(ValueError, match="allowed is empty"):
        r.pick(PROMPTS[0], allowed=[])
    with pytest.raises(TypeError, match="prompt must be"):
        r.pick(42)
    assert records == []


def test_load_rejects_non_callable(small_bundle):
    with pytest.raises(TypeError, match="on_pick must be a callable or None; got str"):
        router.load(small_bundle, on_pick="print")


def test_cli_record(small_bundle, tmp_path, capsys):
    """Check that `router pick --record FILE` appends one JSON line per pick."""
    path = tmp_path / "picks.jsonl"
    for prompt in PROMPTS[:2]:
        status = main(["pick", "--bundle", str(small_bundle), prompt,
                       "--record", str(path)])
        assert status == 0
    printed = capsys.readouterr().out.split()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["model"] for line in lines] == printed
    assert set(lines[0]) == {"model", "scores", "cost_usd", "cost_weight", "quality",
                             "bundle_id", "allowed", "time"}
    assert lines[0]["bundle_id"] == router.load(small_bundle).bundle_id


def test_cli_record_unwritable(small_bundle, tmp_path, capsys):
    status = main(["pick", "--bundle", str(small_bundle), PROMPTS[0],
                   "--record", str(tmp_path / "missing" / "picks.jsonl")])
    assert status == 2
    assert "No such file or directory" in capsys.readouterr().err
