"""Tests for the Markdown model card of training.card."""

import csv
import json
import shutil
import subprocess
import sys

import pytest

import training
from router._choose import OperatingPoints
from router.errors import BundleError
from tests.conftest import REPO, SMALL_MODELS, small_log_rows
from training.card import CARD_TARGETS, render_card, write_card
from training.collect import LogDataWarning

COMMAND = "router train --logs logs/small.csv --out runs/small --no-track"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """Train a bundle on 60 prompts x 3 models, plus one repeated and one unscored row.

    The two extra rows make reading record the ``duplicate_merged`` and
    ``score_missing`` changes, which the card must list.
    """
    rows = small_log_rows()
    rows.append(dict(rows[0]))
    rows.append({**rows[1], "prompt": "A prompt whose only answer has no score.",
                 "score": ""})
    logs = tmp_path_factory.mktemp("card_logs") / "small.csv"
    with open(logs, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    out = tmp_path_factory.mktemp("card_bundles") / "small"
    with pytest.warns(LogDataWarning):
        return training.train(logs, out, track=False).bundle


@pytest.fixture(scope="module")
def manifest(bundle):
    return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def card(bundle):
    return render_card(bundle, COMMAND)


def section(card: str, heading: str) -> str:
    """Return the text of one ``## heading`` section of a card."""
    start = card.index(f"\n## {heading}\n")
    end = card.find("\n## ", start + 1)
    return card[start:] if end == -1 else card[start:end]


def table_row(text: str, first_cell: str) -> list[str]:
    """Return the cells of the Markdown table row that starts with ``first_cell``."""
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row starts with {first_cell!r} in:\n{text}")


def test_card_sections_in_order(card):
    headings = [line for line in card.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Data",
        "## Models",
        "## Featurizer and head",
        "## Validation metrics",
        "## Operating points",
        "## Files",
        "## Rebuild",
    ]
    assert card.startswith("# Router card: small\n")


def test_card_header_names_bundle(card, manifest):
    header = card[:card.index("\n## ")]
    assert manifest["bundle_id"] in header
    assert manifest["created_at"] in header
    assert "one of 3 models" in header
    assert "default quality target of 0.95" in header


def test_card_data_counts(card, manifest):
    data = section(card, "Data")
    assert manifest["data"]["changes"] == {"score_missing": 1, "duplicate_merged": 1}
    assert table_row(data, "`score_missing`") == ["`score_missing`", "1"]
    assert table_row(data, "`duplicate_merged`") == ["`duplicate_merged`", "1"]
    assert "raised 2 LogDataWarnings" in data
    assert f"{manifest['data']['n_answers']:,} answers to 60 prompts" in data
    assert manifest["data"]["fingerprint"] in data
    assert f"`{manifest['data']['files'][0]}` (long)" in data
    n_train = manifest["training"]["n_train"]
    n_validation = manifest["training"]["n_validation"]
    assert f"{n_train} prompts to fit and {n_validation} to validate" in data


def test_card_data_without_changes(small_bundle):
    data = section(render_card(small_bundle, COMMAND), "Data")
    assert "dropped or changed no answer and raised no warning" in data
    assert "| reason | count |" not in data


def test_card_models_table(card, manifest, bundle):
    models = section(card, "Models")
    names = [line.split("|")[1].strip() for line in models.splitlines()
             if line.startswith("| ") and not line.startswith("| model ")]
    assert names == ["cheap-model", "mid-model", "big-model (most accurate)"]

    report = json.loads((bundle / "validation_report.json").read_text())
    validation = {point["label"]: point["quality"] for point in report["models"]}
    default = OperatingPoints(manifest["operating_points"]).for_quality(None)
    for model, share in zip(manifest["models"], default["shares"], strict=True):
        label = model["name"]
        if label == "big-model":
            label += " (most accurate)"
        cells = table_row(models, label)
        assert float(cells[1]) == pytest.approx(model["cost_usd"], rel=1e-3)
        assert cells[2] == f"{100 * model['accuracy']:.1f}%"
        assert cells[3] == f"{100 * validation[model['name']]:.1f}%"
        assert cells[4] == f"{100 * share:.1f}%"


def test_card_model_costs_in_usd(card, manifest):
    models = section(card, "Models")
    for model in manifest["models"]:
        assert SMALL_MODELS[model["name"]] == pytest.approx(model["cost_usd"])
    assert table_row(models, "cheap-model")[1] == "0.0001000"
    assert table_row(models, "mid-model")[1] == "0.001000"
    assert table_row(models, "big-model (most accurate)")[1] == "0.01000"


def test_card_featurizer_and_head(card, manifest):
    router_text = section(card, "Featurizer and head")
    assert "kind `static`" in router_text
    assert f"kind `{manifest['head']['kind']}`" in router_text
    assert f"estimator `{manifest['head']['estimator']}`" in router_text
    assert "pick.onnx within" in router_text


def test_card_validation_metrics(card, manifest):
    metrics = section(card, "Validation metrics")
    values = manifest["metrics"]
    assert table_row(metrics, "AIQ")[1] == f"{100 * values['val_aiq']:.1f}%"
    if values["val_apgr"] is None:
        assert table_row(metrics, "APGR")[1] == "-"
    else:
        assert table_row(metrics, "APGR")[1] == f"{values['val_apgr']:.3f}"
    for key, label in (("val_cpt50", "CPT(50%)"), ("val_cpt80", "CPT(80%)"),
                       ("val_cost_save", "cost save")):
        expected = "-" if values[key] is None else f"{100 * values[key]:.1f}%"
        assert table_row(metrics, label)[1] == expected
    assert "Most accurate model: big-model" in metrics
    assert f"{100 * values['val_oracle_quality']:.1f}%" in metrics


def test_card_operating_points_table(card, manifest):
    text = section(card, "Operating points")
    points = OperatingPoints(manifest["operating_points"])
    best_cost = manifest["metrics"]["val_best_cost"]
    rows = [line for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| quality target")]
    assert len(rows) == len(set(CARD_TARGETS) | {0.95})

    for target in CARD_TARGETS:
        point = points.for_quality(target, warn=False)
        cells = next(
            cells for cells in ([cell.strip() for cell in row.strip("|").split("|")]
                                for row in rows)
            if cells[0].split()[0] == f"{target:g}"
        )
        relative = point["quality"] / points.reference_quality
        assert cells[1] == f"{100 * point['quality']:.1f}%"
        assert cells[2] == f"{100 * relative:.1f}%"
        assert float(cells[3]) == pytest.approx(point["cost_usd"], rel=1e-3)
        assert cells[4] == f"{100 * point['cost_usd'] / best_cost:.1f}%"
        assert ("(not reached)" in cells[0]) == (relative < target - 1e-12)
    assert any(row.startswith("| 0.95 (default)") for row in rows)


def test_card_marks_unreached_target(bundle, manifest, tmp_path):
    """Check that targets above every stored point are marked as not reached."""
    copy = tmp_path / "capped"
    shutil.copytree(bundle, copy)
    capped = json.loads(json.dumps(manifest))
    reference = capped["operating_points"]["reference_quality"]
    for point in capped["operating_points"]["points"]:
        point["quality"] = min(point["quality"], 0.9 * reference)
    (copy / "manifest.json").write_text(json.dumps(capped), encoding="utf-8")

    text = section(render_card(copy, COMMAND), "Operating points")
    assert table_row(text, "0.9")[2] == "90.0%"
    assert table_row(text, "0.95 (default) (not reached)")[2] == "90.0%"
    assert table_row(text, "1 (not reached)")[2] == "90.0%"


def test_card_files_and_sizes(card, manifest, bundle):
    files = section(card, "Files")
    for name, entry in manifest["files"].items():
        cells = table_row(files, name)
        assert cells[2] == f"`{entry['sha256'][:16]}`"
        assert cells[1].endswith(("B", "kB", "MB"))
    assert table_row(files, "manifest.json")
    assert set(manifest["files"]) == {
        p.name for p in bundle.iterdir() if p.name != "manifest.json"}


def test_card_rebuild_command(card):
    rebuild = section(card, "Rebuild")
    assert f"```sh\n{COMMAND}\n```" in rebuild


def test_card_fence_outlasts_backticks(bundle):
    command = "router train --logs `ls logs/*.csv` --out runs/x ```"
    rebuild = section(render_card(bundle, command), "Rebuild")
    assert f"````sh\n{command}\n````" in rebuild


def test_card_without_validation_report(bundle, tmp_path):
    copy = tmp_path / "no_report"
    shutil.copytree(bundle, copy)
    (copy / "validation_report.json").unlink()
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"]["validation_report.json"]
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    models = section(render_card(copy, COMMAND), "Models")
    assert "has no validation_report.json" in models
    assert table_row(models, "cheap-model")[3] == "-"


def test_write_card_creates_parents(bundle, tmp_path):
    out = tmp_path / "cards" / "small.md"
    result = write_card(bundle, out, COMMAND)
    assert result == out
    assert out.read_text(encoding="utf-8") == render_card(bundle, COMMAND)


@pytest.mark.parametrize("command", ["", "   ", None])
def test_card_rejects_empty_command(bundle, command):
    with pytest.raises(ValueError, match="non-empty command"):
        render_card(bundle, command)


def test_card_rejects_non_bundle(tmp_path):
    with pytest.raises(BundleError, match="not a bundle"):
        render_card(tmp_path, COMMAND)


def test_card_rejects_changed_file(bundle, tmp_path):
    copy = tmp_path / "changed"
    shutil.copytree(bundle, copy)
    with open(copy / "validation_report.json", "a", encoding="utf-8") as f:
        f.write(" ")
    with pytest.raises(BundleError, match="validation_report.json"):
        render_card(copy, COMMAND)


def test_card_command_line(bundle, tmp_path):
    out = tmp_path / "card.md"
    result = subprocess.run(
        [sys.executable, "-m", "training.card", str(bundle), str(out),
         "--command", COMMAND],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert out.read_text(encoding="utf-8") == render_card(bundle, COMMAND)


def test_card_command_line_errors(tmp_path):
    missing = subprocess.run(
        [sys.executable, "-m", "training.card", str(tmp_path), str(tmp_path / "x.md")],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert missing.returncode == 2
    assert "--command" in missing.stderr

    not_bundle = subprocess.run(
        [sys.executable, "-m", "training.card", str(tmp_path), str(tmp_path / "x.md"),
         "--command", COMMAND],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert not_bundle.returncode == 2
    assert not_bundle.stderr.startswith("error: ")
    assert not (tmp_path / "x.md").exists()
