"""Check share targets (`router calibrate`) and re-pricing (`router reprice`)."""

import csv
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import router
import training
from router import _bundle
from router._choose import quality_scores
from router.cli import main
from router.errors import BundleError, PriceError, UnknownModelError
from tests.conftest import SMALL_MODELS, small_log_rows
from training import calibrate, collect, label, recalibrate, split

PROMPTS = sorted({row["prompt"] for row in small_log_rows()})
VALIDATION_NAMES = set(recalibrate.VALIDATION_FILES.values())


@pytest.fixture
def bundle(small_bundle, tmp_path) -> Path:
    """A copy of the small bundle that a test may change."""
    return Path(shutil.copytree(small_bundle, tmp_path / "bundle"))


@pytest.fixture
def sample(tmp_path) -> Path:
    """A .txt sample of the small logs' prompts, one per line, blank lines mixed in."""
    path = tmp_path / "sample.txt"
    path.write_text("\n".join(PROMPTS[:30]) + "\n\n" + "\n".join(PROMPTS[30:]) + "\n",
                    encoding="utf-8")
    return path


def manifest_of(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))


def write_prices(path: Path, prices: dict) -> Path:
    path.write_text(json.dumps(prices), encoding="utf-8")
    return path


def shares_of(picks: list[str]) -> dict:
    return {name: picks.count(name) / len(picks) for name in SMALL_MODELS}


# The validation arrays that training stores


def test_validation_arrays_in_bundle(small_bundle):
    """Check that training stores the validation split as listed .npy files."""
    manifest = manifest_of(small_bundle)
    assert manifest["validation"] == recalibrate.VALIDATION_FILES
    assert VALIDATION_NAMES <= set(manifest["files"])
    n_val = manifest["training"]["n_validation"]
    estimates = np.load(small_bundle / "validation_estimates.npy", allow_pickle=False)
    scores = np.load(small_bundle / "validation_scores.npy", allow_pickle=False)
    costs = np.load(small_bundle / "validation_costs.npy", allow_pickle=False)
    assert estimates.shape == scores.shape == costs.shape == (n_val, 3)
    assert estimates.dtype == np.float32
    assert scores.dtype == costs.dtype == np.float64


def test_validation_estimates_match_runtime(small_bundle, small_logs):
    """Check that the stored estimates are the scores of the validation prompts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", collect.LogDataWarning)
        table = label.build_table(collect.read_logs(small_logs).frame)
    _, val_rows = split.train_validation_split(table.prompts, validation=0.2, seed=0)
    r = router.load(small_bundle)
    expected = np.stack([r.scores(table.prompts[i]) for i in val_rows])
    stored = np.load(small_bundle / "validation_estimates.npy")
    np.testing.assert_allclose(stored, expected, atol=1e-5)
    np.testing.assert_array_equal(np.load(small_bundle / "validation_scores.npy"),
                                  table.scores[val_rows])


def test_mean_tokens_only_when_logged(small_bundle):
    for entry in manifest_of(small_bundle)["models"]:
        assert "mean_input_tokens" not in entry
        assert "mean_output_tokens" not in entry


# Share targets


def test_calibrate_meets_share_on_sample(bundle, sample):
    """Check that the pinned point keeps big-model at or under 20% of the sample."""
    result = recalibrate.calibrate_shares(bundle, sample, {"big-model": 0.2})
    assert result.n_prompts == len(PROMPTS)
    assert result.shares["big-model"] <= 0.2

    r = router.load(bundle)
    picks = r.pick_batch(PROMPTS)
    reached = shares_of(picks)
    assert reached["big-model"] <= 0.2
    for name in SMALL_MODELS:
        assert reached[name] == pytest.approx(result.shares[name], abs=1e-6)
    assert r.bundle_id == result.bundle_id


def test_calibrate_pins_default_only(bundle, sample):
    """Check that quality=None takes the pinned point and explicit targets do not."""
    before = router.load(bundle)
    explicit = {q: before.operating_points.for_quality(q) for q in (0.5, 1.0)}
    result = recalibrate.calibrate_shares(bundle, sample, {"big-model": 0.2})

    r = router.load(bundle)
    assert r.operating_points.for_quality(None) == result.point
    assert r.explain(PROMPTS[0])["operating_point"] == result.point
    for q, point in explicit.items():
        assert r.operating_points.for_quality(q) == point
    stored = manifest_of(bundle)["operating_points"]["pinned"]
    assert set(stored) >= {"cost_weight", "quality", "cost_usd", "reason",
                           "shares_on_sample"}
    assert "big-model <= 0.2" in stored["reason"]


def test_calibrate_highest_quality_within_limit(bundle, sample):
    """Check that no cost weight within the limit beats the pinned quality."""
    result = recalibrate.calibrate_shares(bundle, sample, {"big-model": 0.2})
    r = router.load(bundle)
    sample_scores = np.stack([r.scores(p) for p in PROMPTS])
    estimates = np.load(bundle / "validation_estimates.npy")
    scores = np.load(bundle / "validation_scores.npy")
    costs = np.load(bundle / "validation_costs.npy")
    model_costs = np.array(list(SMALL_MODELS.values()))
    relative = model_costs / model_costs.max()
    big = r.models.index("big-model")
    for weight in np.concatenate([[0.0], np.geomspace(1e-4, 100, 400)]):
        picks = np.argmax(sample_scores - weight * relative, axis=1)
        if np.mean(picks == big) > 0.2:
            continue
        choice = calibrate.choose(estimates, relative, weight)
        quality, _ = calibrate.choice_quality(choice, scores, costs, model_costs)
        assert quality <= result.point["quality"] + 1e-12


def test_calibrate_several_limits(bundle, sample):
    limits = {"big-model": 0.5, "mid-model": 0.3}
    result = recalibrate.calibrate_shares(bundle, sample, limits)
    reached = shares_of(router.load(bundle).pick_batch(PROMPTS))
    for name, limit in limits.items():
        assert reached[name] <= limit
    assert result.max_share == limits


def test_calibrate_accepts_log_file(bundle, small_logs):
    """Check that a log file counts each distinct prompt once, without prices."""
    result = recalibrate.calibrate_shares(bundle, small_logs, {"big-model": 0.25})
    assert result.n_prompts == len(PROMPTS)


def test_calibrate_accepts_prompt_list(bundle):
    messages = [[{"role": "user", "content": p}] for p in PROMPTS]
    result = recalibrate.calibrate_shares(bundle, messages, {"big-model": 0.2})
    assert result.n_prompts == len(PROMPTS)


def test_calibrate_rewrites_only_manifest(bundle, sample):
    """Check the files, checksums, id and revision log after a calibration."""
    before = manifest_of(bundle)
    mode = os.stat(bundle / "manifest.json").st_mode
    listing = sorted(p.name for p in bundle.iterdir())
    recalibrate.calibrate_shares(bundle, sample, {"big-model": 0.2})

    after = manifest_of(bundle)
    assert after["files"] == before["files"]
    assert after["bundle_id"] != before["bundle_id"]
    assert after["bundle_id"] == recalibrate.revised_bundle_id(after)
    assert after["revisions"][-1]["command"] == "calibrate"
    assert after["revisions"][-1]["previous_bundle_id"] == before["bundle_id"]
    assert sorted(p.name for p in bundle.iterdir()) == listing
    assert os.stat(bundle / "manifest.json").st_mode == mode
    _bundle.read_manifest(bundle)


def test_calibrate_twice_replaces_pin(bundle, sample):
    recalibrate.calibrate_shares(bundle, sample, {"big-model": 0.2})
    second = recalibrate.calibrate_shares(bundle, sample, {"big-model": 0.5})
    assert manifest_of(bundle)["operating_points"]["pinned"] == second.point
    assert len(manifest_of(bundle)["revisions"]) == 2


def test_unpin_restores_default(bundle, sample):
    default = router.load(bundle).operating_points.for_quality(None)
    recalibrate.calibrate_shares(bundle, sample, {"big-model": 0.2})
    recalibrate.unpin(bundle)
    assert "pinned" not in manifest_of(bundle)["operating_points"]
    assert router.load(bundle).operating_points.for_quality(None) == default


@pytest.mark.parametrize("max_share, error, match", [
    ({"gpt-5": 0.2}, UnknownModelError, r"does not route to: \['gpt-5'\]"),
    ({"big-model": 0.0}, ValueError, r"must be in \(0, 1\]"),
    ({"big-model": 1.5}, ValueError, r"must be in \(0, 1\]"),
    ({"big-model": -0.1}, ValueError, r"must be in \(0, 1\]"),
    ({"big-model": float("nan")}, ValueError, r"must be in \(0, 1\]"),
    ({"big-model": "0.2"}, TypeError, "must be a number"),
    ({"big-model": True}, TypeError, "must be a number"),
    ({}, ValueError, "non-empty mapping"),
    ([("big-model", 0.2)], ValueError, "non-empty mapping"),
])
def test_calibrate_invalid_limits(bundle, sample, max_share, error, match):
    before = manifest_of(bundle)
    with pytest.raises(error, match=match):
        recalibrate.calibrate_shares(bundle, sample, max_share)
    assert manifest_of(bundle) == before


def test_calibrate_unreachable_together(bundle, sample):
    limits = {"cheap-model": 0.1, "mid-model": 0.1, "big-model": 0.1}
    with pytest.raises(ValueError, match="no point meets all of them at once"):
        recalibrate.calibrate_shares(bundle, sample, limits)


def test_calibrate_unreachable_alone(bundle, sample, monkeypatch):
    """Check that a limit no weight meets names the lowest share reached.

    Every model's share of this sample reaches 0 at some weight of the full grid,
    so the grid is cut to weights at which the cheapest model takes every pick.
    """
    monkeypatch.setattr(recalibrate, "FINE_COST_WEIGHTS", np.array([50.0, 100.0]))
    with pytest.raises(ValueError, match=r"cheap-model 1\.000 \(limit 0\.5\)"):
        recalibrate.calibrate_shares(bundle, sample, {"cheap-model": 0.5})


def test_calibrate_empty_sample(bundle, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n \n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no prompts"):
        recalibrate.calibrate_shares(bundle, path, {"big-model": 0.2})


def test_calibrate_needs_validation_arrays(bundle, sample):
    """Check that a bundle trained without validation arrays is rejected."""
    manifest = manifest_of(bundle)
    del manifest["validation"]
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match="has no validation arrays.*Retrain"):
        recalibrate.calibrate_shares(bundle, sample, {"big-model": 0.2})
    with pytest.raises(BundleError, match="has no validation arrays"):
        recalibrate.reprice(bundle, {"big-model": {"per_call_usd": 0.02}})


def test_calibrate_rejects_changed_file(bundle, sample):
    path = bundle / "validation_scores.npy"
    path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(BundleError, match="validation_scores.npy does not match"):
        recalibrate.calibrate_shares(bundle, sample, {"big-model": 0.2})


def test_cli_calibrate(bundle, sample, capsys):
    """Check that `router calibrate` pins a point and prints the shares reached."""
    status = main(["calibrate", "--bundle", str(bundle), "--prompts", str(sample),
                   "--max-share", "big-model=0.2", "--max-share", "mid-model=0.6",
                   "--quiet"])
    out = capsys.readouterr().out
    assert status == 0
    pinned = manifest_of(bundle)["operating_points"]["pinned"]
    assert f"pinned cost weight {pinned['cost_weight']:.4g}" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.split() and line.split()[0] in SMALL_MODELS}
    assert rows["big-model"] == [f"{pinned['shares_on_sample']['big-model']:.3f}",
                                 "0.2"]
    assert rows["mid-model"][1] == "0.6"
    assert len(rows["cheap-model"]) == 1


def test_cli_calibrate_clear(bundle, sample, capsys):
    main(["calibrate", "--bundle", str(bundle), "--prompts", str(sample),
          "--max-share", "big-model=0.2", "--quiet"])
    status = main(["calibrate", "--bundle", str(bundle), "--clear"])
    assert status == 0
    assert "pinned" not in manifest_of(bundle)["operating_points"]
    assert "removed the pinned point" in capsys.readouterr().out


@pytest.mark.parametrize("args, match", [
    (["--max-share", "gpt-5=0.2"], "does not route to"),
    (["--max-share", "big-model=1.2"], r"must be in \(0, 1\]"),
    (["--max-share", "big-model"], "expected MODEL=FRACTION"),
    (["--max-share", "big-model=lots"], "expected MODEL=FRACTION"),
    ([], "needs --prompts FILE and at least one --max-share"),
])
def test_cli_calibrate_errors(bundle, sample, capsys, args, match):
    import re

    try:
        status = main(["calibrate", "--bundle", str(bundle), "--prompts", str(sample),
                       *args])
    except SystemExit as e:
        status = e.code
    assert status == 2
    assert re.search(match, capsys.readouterr().err)


# Re-pricing


def test_reprice_per_call(bundle, tmp_path):
    """Check costs, operating points, checksums and id after a per-call reprice."""
    before = manifest_of(bundle)
    prices = write_prices(tmp_path / "prices.json",
                          {"big-model": {"per_call_usd": 0.004}})
    result = recalibrate.reprice(bundle, prices)

    assert result.old_costs == SMALL_MODELS
    assert result.new_costs == {**SMALL_MODELS, "big-model": 0.004}
    assert result.repriced == ("big-model",)
    assert not result.reordered
    after = manifest_of(bundle)
    assert after["files"] == before["files"]
    assert after["bundle_id"] == result.bundle_id != before["bundle_id"]
    assert router.load(bundle).costs == result.new_costs

    # The points equal a calibration from scratch on the stored arrays, with
    # the repriced model charged its new cost on every answer it has.
    scores = np.load(bundle / "validation_scores.npy")
    costs = np.load(bundle / "validation_costs.npy")
    costs[:, 2] = np.where(np.isnan(scores[:, 2]), np.nan, 0.004)
    model_costs = np.array(list(result.new_costs.values()))
    expected = calibrate.operating_points(
        np.load(bundle / "validation_estimates.npy"), scores, costs, model_costs,
        list(SMALL_MODELS), default_quality=0.95)
    assert after["operating_points"] == json.loads(json.dumps(expected))
    assert after["metrics"]["val_best_cost"] == pytest.approx(0.004)


def test_reprice_swaps_cheapest_head_order(small_logs, tmp_path):
    """Check that the cheapest head's cumulative estimate follows the new cost order."""
    out = training.train(small_logs, tmp_path / "cheapest", head="cheapest",
                         track=False).bundle
    old = router.load(out)
    old_scores = {p: old.scores(p) for p in PROMPTS[:10]}
    # Swap the costs of cheap-model and mid-model.
    prices = write_prices(tmp_path / "swap.json", {
        "cheap-model": {"per_call_usd": 0.001},
        "mid-model": {"per_call_usd": 0.0001},
    })
    result = recalibrate.reprice(out, prices)
    assert result.reordered

    r = router.load(out)
    assert r.models == old.models
    for prompt, s in old_scores.items():
        # Class probabilities in the old cumulative order: cheap, mid, big.
        p_cheap, p_mid, p_big = s[0], s[1] - s[0], s[2] - s[1]
        expected = np.array([p_mid + p_cheap, p_mid, p_mid + p_cheap + p_big])
        np.testing.assert_allclose(r.scores(prompt), expected, atol=1e-6)

    outputs = np.load(out / "validation_estimates.npy")
    estimates = quality_scores("cheapest", outputs, np.arange(3), 3,
                               np.array([1, 0, 2]))
    scores = np.load(out / "validation_scores.npy")
    costs = np.load(out / "validation_costs.npy")
    costs[:, :2] = np.where(np.isnan(scores[:, :2]), np.nan, [0.001, 0.0001])
    expected_points = calibrate.operating_points(
        estimates, scores, costs, np.array([0.001, 0.0001, 0.01]), list(SMALL_MODELS),
        default_quality=0.95)
    assert manifest_of(out)["operating_points"] == json.loads(
        json.dumps(expected_points))


def test_reprice_order_keeps_correctness_scores(bundle, tmp_path):
    """Check that a reorder leaves the correctness head's per-model scores alone."""
    before = {p: router.load(bundle).scores(p) for p in PROMPTS[:5]}
    recalibrate.reprice(bundle, write_prices(tmp_path / "p.json", {
        "cheap-model": {"per_call_usd": 0.02}}))
    r = router.load(bundle)
    for prompt, scores in before.items():
        np.testing.assert_array_equal(r.scores(prompt), scores)


def test_reprice_per_million_needs_token_counts(bundle, tmp_path):
    prices = write_prices(tmp_path / "p.json", {"big-model": {
        "input_usd_per_million": 2.0, "output_usd_per_million": 8.0}})
    with pytest.raises(PriceError, match=r"\['big-model'\] per million.*per_call_usd"):
        recalibrate.reprice(bundle, prices)


def test_reprice_per_million_with_token_counts(tmp_path):
    """Check that per-million prices apply to the mean logged token counts."""
    rows = small_log_rows()
    for i, row in enumerate(rows):
        row["input_tokens"] = 10 + i % 3
        row["output_tokens"] = 100 if row["model"] == "big-model" else 20
    path = tmp_path / "tokens.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = training.train(path, tmp_path / "b", track=False).bundle
    entry = manifest_of(out)["models"][2]
    big_inputs = [row["input_tokens"] for row in rows if row["model"] == "big-model"]
    assert entry["mean_input_tokens"] == pytest.approx(np.mean(big_inputs))
    assert entry["mean_output_tokens"] == 100

    prices = write_prices(tmp_path / "p.json", {"big-model": {
        "input_usd_per_million": 2.0, "output_usd_per_million": 8.0}})
    result = recalibrate.reprice(out, prices)
    expected = (entry["mean_input_tokens"] * 2.0 + 100 * 8.0) / 1e6
    assert result.new_costs["big-model"] == pytest.approx(expected)


def test_reprice_removes_pin(bundle, sample, tmp_path):
    recalibrate.calibrate_shares(bundle, sample, {"big-model": 0.2})
    prices = write_prices(tmp_path / "p.json", {"big-model": {"per_call_usd": 0.02}})
    result = recalibrate.reprice(bundle, prices)
    assert result.unpinned
    assert "pinned" not in manifest_of(bundle)["operating_points"]


def test_reprice_twice_keeps_replaced_costs(bundle, tmp_path):
    recalibrate.reprice(bundle, write_prices(tmp_path / "a.json", {
        "big-model": {"per_call_usd": 0.02}}))
    recalibrate.reprice(bundle, write_prices(tmp_path / "b.json", {
        "mid-model": {"per_call_usd": 0.002}}))
    manifest = manifest_of(bundle)
    assert manifest["validation"]["costs_replaced"] == ["big-model", "mid-model"]
    assert router.load(bundle).costs == {"cheap-model": 0.0001, "mid-model": 0.002,
                                         "big-model": 0.02}


def test_reprice_ignores_unknown_models(bundle, tmp_path, caplog):
    prices = write_prices(tmp_path / "p.json", {
        "big-model": {"per_call_usd": 0.02}, "gpt-5": {"per_call_usd": 0.1}})
    result = recalibrate.reprice(bundle, prices)
    assert result.ignored == ("gpt-5",)
    assert "gpt-5" in caplog.text


def test_reprice_prices_no_bundle_model(bundle, tmp_path):
    before = manifest_of(bundle)
    prices = write_prices(tmp_path / "p.json", {"gpt-5": {"per_call_usd": 0.1}})
    with pytest.raises(PriceError, match="prices none of the bundle's models"):
        recalibrate.reprice(bundle, prices)
    assert manifest_of(bundle) == before


def test_cli_reprice(bundle, tmp_path, capsys):
    """Check that `router reprice` prints old and new costs and the new points."""
    prices = write_prices(tmp_path / "p.json", {
        "cheap-model": {"per_call_usd": 0.002}, "mid-model": {"per_call_usd": 0.0005}})
    status = main(["reprice", "--bundle", str(bundle), "--prices", str(prices),
                   "--quiet"])
    out = capsys.readouterr().out
    assert status == 0
    assert "cheap-model  $0.000100  ->  $0.002000" in out
    assert "mid-model    $0.001000  ->  $0.000500" in out
    assert "big-model    $0.010000  ->  $0.010000  (not in the price file)" in out
    assert "change the models' cost order" in out
    assert "target  cost weight  quality  cost/request" in out
    assert f"bundle id: {manifest_of(bundle)['bundle_id']}" in out


def test_cli_reprice_error(bundle, tmp_path, capsys):
    status = main(["reprice", "--bundle", str(bundle), "--prices",
                   str(tmp_path / "missing.json")])
    assert status == 2
    assert "price file not found" in capsys.readouterr().err


def test_pick_record_of_pinned_point(bundle, sample):
    """Check that a pick at the pinned point records its weight and no target."""
    result = recalibrate.calibrate_shares(bundle, sample, {"big-model": 0.2})
    records = []
    r = router.load(bundle, on_pick=records.append)
    r.pick(PROMPTS[0])
    assert records[0].quality is None
    assert records[0].cost_weight == result.point["cost_weight"]
    assert records[0].bundle_id == result.bundle_id
