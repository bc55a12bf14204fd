"""Check reading pairwise preference logs and training a router on them."""

import csv
import json
import warnings
from pathlib import Path

import polars as pl
import pytest

import router
import training
from router.cli import main
from router.errors import LogError, PriceError
from training.collect import LogDataWarning, read_logs
from training.preferences import WINNER_SCORES, is_preference_log

PRICES = {"cheap-model": {"per_call_usd": 0.0001},
          "mid-model": {"per_call_usd": 0.001},
          "big-model": {"per_call_usd": 0.01}}


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_prices(path: Path) -> Path:
    path.write_text(json.dumps(PRICES), encoding="utf-8")
    return path


def comparison(prompt, model_a, model_b, winner, **extra) -> dict:
    return {"prompt": prompt, "model_a": model_a, "model_b": model_b,
            "winner": winner, **extra}


def score_of(logs, prompt: str, model: str) -> float:
    rows = logs.frame.filter(pl.col("prompt") == prompt, pl.col("model") == model)
    return rows["score"].item()


def arena_rows(n_per_topic: int = 20) -> list[dict]:
    """Return comparisons in which each topic has one cheapest good-enough model.

    Arithmetic: every model is good, so comparisons tie. Code: mid-model and
    big-model are good, cheap-model loses to both. Essays: only big-model is good.
    """
    rows = []
    for k in range(n_per_topic):
        math = f"What is {k + 2} plus {3 * k + 1}? Give only the number."
        code = (f"Write a python function that returns the {k + 2}th item of a list "
                f"of {3 * k + 1} items.")
        essay = (f"Write a careful essay on the history of bridge number {k + 2} "
                 f"and its {3 * k + 1} arches.")
        rows += [
            comparison(math, "cheap-model", "big-model", "tie"),
            comparison(math, "mid-model", "cheap-model", "tie"),
            comparison(code, "cheap-model", "mid-model", "model_b"),
            comparison(code, "big-model", "mid-model", "tie"),
            comparison(code, "big-model", "cheap-model", "model_a"),
            comparison(essay, "mid-model", "big-model", "model_b"),
            comparison(essay, "big-model", "cheap-model", "model_a"),
            comparison(essay, "cheap-model", "mid-model", "tie (bothbad)"),
        ]
    return rows


# Reading


@pytest.mark.parametrize("winner, expected", [
    ("model_a", (1.0, 0.0)),
    ("a", (1.0, 0.0)),
    ("A", (1.0, 0.0)),
    ("model_b", (0.0, 1.0)),
    (" Model_B ", (0.0, 1.0)),
    ("b", (0.0, 1.0)),
    ("tie", (1.0, 1.0)),
    ("tie (bothbad)", (0.0, 0.0)),
    ("both_bad", (0.0, 0.0)),
])
def test_winner_rule(tmp_path, winner, expected):
    """Check the score that each winner value gives each side."""
    path = write_csv(tmp_path / "p.csv", [
        comparison("Q1", "cheap-model", "big-model", winner),
        comparison("Q2", "cheap-model", "big-model", "tie"),
    ])
    logs = read_logs(path, prices=write_prices(tmp_path / "prices.json"))
    assert logs.format == ("preferences",)
    assert score_of(logs, "Q1", "cheap-model") == expected[0]
    assert score_of(logs, "Q1", "big-model") == expected[1]


def test_rule_table_is_documented():
    import training.preferences as module

    for value in WINNER_SCORES:
        assert f"``{value}``" in module.__doc__


def test_repeated_comparisons_average(tmp_path):
    """Check that a prompt compared several times gets the mean per model."""
    path = write_csv(tmp_path / "p.csv", [
        comparison("Q", "cheap-model", "big-model", "model_b"),
        comparison("Q", "big-model", "cheap-model", "tie"),
        comparison("Q", "mid-model", "cheap-model", "model_b"),
        comparison("Q", "big-model", "mid-model", "model_a"),
    ])
    with pytest.warns(LogDataWarning, match="merged answers of one model"):
        logs = read_logs(path, prices=write_prices(tmp_path / "prices.json"))
    assert score_of(logs, "Q", "cheap-model") == pytest.approx(2 / 3)
    assert score_of(logs, "Q", "big-model") == pytest.approx(1.0)
    assert score_of(logs, "Q", "mid-model") == pytest.approx(0.0)
    # 8 answers of 3 models merge into 3, removing 5 rows.
    assert logs.changes == {"duplicate_merged": 5}


def test_missing_winner_dropped(tmp_path):
    path = write_csv(tmp_path / "p.csv", [
        comparison("Q1", "cheap-model", "big-model", ""),
        comparison("Q2", "cheap-model", "big-model", "a"),
    ])
    with pytest.warns(LogDataWarning, match="dropped 2 answers with no score"):
        logs = read_logs(path, prices=write_prices(tmp_path / "prices.json"))
    assert logs.n_prompts == 1


def test_same_model_comparison_dropped(tmp_path):
    path = write_csv(tmp_path / "p.csv", [
        comparison("Q1", "big-model", "big-model", "a"),
        comparison("Q2", "cheap-model", "big-model", "b"),
    ])
    with pytest.warns(LogDataWarning, match="comparisons of a model with itself"):
        logs = read_logs(path, prices=write_prices(tmp_path / "prices.json"))
    assert logs.changes == {"preference_same_model": 2}
    assert logs.frame["prompt"].unique().to_list() == ["Q2"]


def test_optional_columns(tmp_path):
    path = write_csv(tmp_path / "p.csv", [
        comparison("Q1", "cheap-model", "big-model", "a", prompt_id="q-1", task="qa"),
        comparison("Q2", "cheap-model", "big-model", "b", prompt_id="q-2", task="qa"),
    ])
    logs = read_logs(path, prices=write_prices(tmp_path / "prices.json"))
    assert logs.format == ("preferences",)
    assert sorted(logs.frame["prompt_id"].unique()) == ["q-1", "q-2"]
    assert logs.frame["task"].unique().to_list() == ["qa"]


def test_jsonl_messages(tmp_path):
    path = tmp_path / "p.jsonl"
    messages = [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Q?"}]
    lines = [comparison(messages, "cheap-model", "big-model", "tie"),
             comparison("Q2", "cheap-model", "big-model", "b")]
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    logs = read_logs(path, prices=write_prices(tmp_path / "prices.json"))
    assert "Hi\nQ?" in logs.frame["prompt"].to_list()


@pytest.mark.parametrize("columns, expected", [
    (["prompt", "model_a", "model_b", "winner"], True),
    (["winner", "model_b", "prompt", "model_a", "prompt_id", "task"], True),
    (["prompt", "model_a", "model_b", "winner", "judge"], False),
    (["prompt", "model_a", "model_b"], False),
    (["prompt", "model", "score"], False),
])
def test_detection_needs_exact_columns(columns, expected):
    assert is_preference_log(columns) is expected


def test_extra_columns_need_explicit_format(tmp_path):
    """Check that auto rejects extra columns and format="preferences" ignores them."""
    path = write_csv(tmp_path / "arena.csv", [
        comparison("Q1", "cheap-model", "big-model", "a", judge="user-1"),
        comparison("Q2", "cheap-model", "big-model", "b", judge="user-2"),
    ])
    prices = write_prices(tmp_path / "prices.json")
    with pytest.raises(LogError, match="cannot tell the log format.*'preferences'"):
        read_logs(path, prices=prices)
    logs = read_logs(path, format="preferences", prices=prices)
    assert logs.models == ("big-model", "cheap-model")


def test_needs_prices(tmp_path):
    path = write_csv(tmp_path / "p.csv", [
        comparison("Q1", "cheap-model", "big-model", "a"),
    ])
    with pytest.raises(PriceError, match="Pass a price file"):
        read_logs(path)


@pytest.mark.parametrize("rows, match", [
    ([comparison("Q", "cheap-model", "big-model", "left")],
     r"column 'winner' of .* must contain one of .*'left' in data row 1"),
    ([comparison("Q", "", "big-model", "a")],
     r"no model name in column 'model_a', for example data row 1"),
    ([comparison("Q", "cheap-model", " ", "a")],
     r"no model name in column 'model_b'"),
])
def test_invalid_values(tmp_path, rows, match):
    path = write_csv(tmp_path / "p.csv", rows)
    with pytest.raises(LogError, match=match):
        read_logs(path, prices=write_prices(tmp_path / "prices.json"))


def test_missing_column_with_forced_format(tmp_path):
    path = write_csv(tmp_path / "p.csv", [{"prompt": "Q", "model_a": "x",
                                            "model_b": "y"}])
    with pytest.raises(LogError, match="no column 'winner', which preference logs"):
        read_logs(path, format="preferences")


# Training


@pytest.fixture(scope="module")
def arena(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("arena")
    return write_csv(folder / "arena.csv", arena_rows()), write_prices(
        folder / "prices.json")


def test_train_on_preferences(arena, tmp_path):
    """Check that a router trained on preferences sends each topic to its model."""
    logs, prices = arena
    with warnings.catch_warnings():
        # Each prompt is compared several times, so merged answers are expected.
        warnings.filterwarnings("ignore", "merged answers", LogDataWarning)
        result = training.train(logs, tmp_path / "b", format="preferences",
                                prices=prices, track=False)
    manifest = json.loads((result.bundle / "manifest.json").read_text())
    assert manifest["data"]["formats"] == ["preferences"]
    assert [m["name"] for m in manifest["models"]] == list(PRICES)

    r = router.load(result.bundle)
    assert r.pick("What is 40 plus 2? Give only the number.", quality=0.9) == (
        "cheap-model")
    assert r.pick("Write a careful essay on the history of bridge number 99 and its "
                  "7 arches.", quality=0.9) == "big-model"


def test_cli_train_preferences(arena, tmp_path, capsys):
    logs, prices = arena
    status = main(["train", "--logs", str(logs), "--format", "preferences",
                   "--prices", str(prices), "--out", str(tmp_path / "b"),
                   "--no-track"])
    captured = capsys.readouterr()
    assert status == 0
    assert "AIQ" in captured.out
    assert "warning: merged answers of one model" in captured.err
