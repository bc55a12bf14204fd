"""Train on small logs the tests write and check the bundle, the knob and MLflow."""

import json
import warnings

import numpy as np
import onnxruntime as ort
import pytest

import router
import training
from tests.conftest import SMALL_MODELS, small_log_rows


def test_bundle_manifest_fields(small_bundle):
    """Check that the manifest records what the runtime and an auditor need."""
    manifest = json.loads((small_bundle / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert [m["name"] for m in manifest["models"]] == list(SMALL_MODELS)
    assert manifest["featurizer"]["kind"] == "static"
    assert manifest["head"]["kind"] == "correctness"
    assert len(manifest["data"]["fingerprint"]) == 64
    assert manifest["data"]["n_prompts"] == 60
    assert manifest["label_policy"]["unanswered"] == "big-model"
    assert manifest["operating_points"]["points"]
    assert set(manifest["files"]) == {
        p.name for p in small_bundle.iterdir() if p.name != "manifest.json"}


def test_bundle_holds_no_pickle(small_bundle):
    """Check that a bundle has only ONNX, JSON and .npy files."""
    suffixes = {p.suffix for p in small_bundle.iterdir()}
    assert suffixes <= {".onnx", ".json", ".npy"}


def test_router_learns_topics(small_bundle):
    """Check that cheap prompts go to the cheap model and hard ones to the big one."""
    r = router.load(small_bundle)
    assert r.pick("What is 40 plus 2? Give only the number.", quality=0.9) == "cheap-model"
    assert r.pick("Write a careful essay on the history of bridge number 99 "
                  "and its 7 arches.", quality=0.9) == "big-model"


def test_fused_graph_matches_numpy_head(small_bundle, small_logs):
    """Check that pick.onnx and the NumPy token-score head give the same scores."""
    r = router.load(small_bundle)
    prompts = sorted({row["prompt"] for row in small_log_rows()})
    prompts += ["", "unseen words entirely", "ünïcödé 東京 😀"]
    session = ort.InferenceSession(str(small_bundle / "pick.onnx"),
                                   providers=["CPUExecutionProvider"])
    for text in prompts:
        ids = r.featurizer.token_ids(text) or [r.featurizer.pad_id]
        feeds = {"token_ids": np.array([ids], dtype=np.int64),
                 "token_counts": np.array([[max(len(r.featurizer.token_ids(text)), 1)]],
                                          dtype=np.float32)}
        expected = session.run(["scores"], feeds)[0][0]
        result = r.scores(text)
        assert np.max(np.abs(result - expected)) <= 1e-5, text


@pytest.mark.parametrize("head, estimator", [
    ("cheapest", "logreg"),
    ("cheapest", "lightgbm"),
    ("correctness", "lightgbm"),
])
def test_other_heads_train_and_pick(small_logs, tmp_path, head, estimator):
    """Check that every head and estimator exports a bundle that picks."""
    result = training.train(small_logs, tmp_path / "b", head=head,
                            estimator=estimator, track=False)
    assert result.metrics["onnx_max_diff"] <= 1e-4
    r = router.load(result.bundle)
    picks = r.pick_batch(["What is 3 plus 4?", "Write a python function."])
    assert set(picks) <= set(SMALL_MODELS)


def test_quality_knob_orders_cost(small_bundle):
    """Check that a higher quality target never picks a cheaper operating point."""
    r = router.load(small_bundle)
    costs = [r.operating_points.for_quality(q)["cost_usd"]
             for q in (0.3, 0.6, 0.8, 0.9, 1.0)]
    assert costs == sorted(costs)


def test_quality_unreachable_warns(small_bundle):
    """Check that a target above every point takes the best one and says so."""
    r = router.load(small_bundle)
    with pytest.warns(router.QualityNotReachedWarning, match="no operating point"):
        name = r.pick("What is 2 plus 2?", quality=1.4)
    assert name in SMALL_MODELS


def test_quality_invalid_rejected(small_bundle):
    """Check that a quality outside 0..1.5 or of the wrong type is rejected."""
    r = router.load(small_bundle)
    with pytest.raises(ValueError, match="quality"):
        r.pick("hi", quality=-0.1)
    with pytest.raises(TypeError, match="quality"):
        r.pick("hi", quality="high")


def test_allowed_restricts_choice(small_bundle):
    """Check that allowed= never returns a model outside the set."""
    r = router.load(small_bundle)
    essay = "Write a careful essay on the history of bridge number 5 and its 4 arches."
    assert r.pick(essay, allowed=["cheap-model", "mid-model"]) in {"cheap-model",
                                                                   "mid-model"}
    with pytest.raises(router.UnknownModelError, match="gpt-9"):
        r.pick(essay, allowed=["gpt-9"])
    with pytest.raises(ValueError, match="empty"):
        r.pick(essay, allowed=[])


def test_train_logs_mlflow_run(small_logs, tmp_path):
    """Check that a tracked run stores parameters, metrics and the bundle."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = training.train(small_logs, tmp_path / "b", tracking_uri=uri)
        client = mlflow.tracking.MlflowClient(uri)
        run = client.get_run(result.run_id)
        artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert run.data.params["featurizer"] == "static"
    assert "val_aiq" in run.data.metrics
    assert "b" in artifacts
    assert "validation_curve.png" in artifacts
