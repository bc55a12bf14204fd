"""Train on the real shared logs, reload the bundle and pick, as a user would."""

import ast
import json

import numpy as np
import polars as pl
import pytest

import router
from router.cli import main
from tests.conftest import REPO, SHARED_DATA, requires_shared_data

pytestmark = requires_shared_data

PRICES = REPO / "examples" / "routellm-mmlu-prices.json"


def _real_prompts(n: int = 60) -> list[str]:
    prompts = []
    for path in sorted((SHARED_DATA / "routerbench").glob("*.csv")):
        column = pl.read_csv(path)["prompt"].to_list()
        prompts += [router.prompt_text(ast.literal_eval(p)) for p in column[:n // 3]]
    return prompts


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.mark.parametrize("name, args", [
    ("routerbench", ["--format", "routerbench"]),
    ("routellm-mmlu", ["--format", "routellm", "--prices", str(PRICES)]),
])
def test_cli_train_real_logs(name, args, tmp_path, tracking, capsys):
    """Check that `router train` writes a bundle and an MLflow run, and picks work."""
    import mlflow

    out = tmp_path / name
    status = main(["train", "--logs", str(SHARED_DATA / name), *args, "--out", str(out),
                   "--tracking-uri", tracking, "--quiet"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "AIQ" in printed

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["metrics"]["onnx_max_diff"] <= 1e-4
    assert manifest["metrics"]["fused_max_diff"] <= 1e-4
    client = mlflow.tracking.MlflowClient(tracking)
    experiment = client.get_experiment_by_name("learned-router")
    runs = client.search_runs([experiment.experiment_id],
                              f"tags.bundle_id = '{manifest['bundle_id']}'")
    assert len(runs) == 1
    assert runs[0].data.metrics["val_aiq"] == pytest.approx(manifest["metrics"]["val_aiq"])

    r = router.load(out)
    picks = r.pick_batch(_real_prompts())
    assert set(picks) <= set(r.models)
    assert r.pick("Write a python function that reverses a list.") in r.models


def test_cli_eval_prints_report_and_plot(tmp_path, capsys):
    """Check that `router eval --json` reports metrics and writes the plot."""
    bundle = tmp_path / "rb"
    logs = str(SHARED_DATA / "routerbench")
    assert main(["train", "--logs", logs, "--out", str(bundle), "--no-track",
                 "--quiet"]) == 0
    capsys.readouterr()
    plot = tmp_path / "curve.png"
    assert main(["eval", "--bundle", str(bundle), "--logs", logs, "--json",
                 "--plot", str(plot), "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_prompts"] == 2225
    assert report["metrics"]["router"]["aiq"] > report["random_mix_metrics"]["aiq"]
    assert plot.stat().st_size > 10_000


# The reader warns about the real logs' missing scores and reused ids, which its
# own tests check.
@pytest.mark.filterwarnings("ignore::training.collect.LogDataWarning")
def test_minilm_lightgbm_real_logs(tmp_path):
    """Check the MiniLM path: ONNX encoder, LightGBM head, features as in training."""
    import training
    from training import embed

    result = training.train(SHARED_DATA / "routerbench", tmp_path / "minilm",
                            featurizer="minilm", estimator="lightgbm", track=False)
    assert result.metrics["onnx_max_diff"] <= 1e-4
    r = router.load(result.bundle)
    prompts = _real_prompts(30)
    expected = embed.make_featurizer("minilm").transform(prompts)
    runtime = r.featurizer.transform(prompts)
    assert np.max(np.abs(runtime - expected)) <= 1e-5
    assert set(r.pick_batch(prompts)) <= set(r.models)
