"""Damaged training logs, shared by the pipeline and CLI tests of ``train``.

Each case writes logs into a folder and returns the options to train on them:
``{"logs": path}``, plus ``prices`` or ``format`` where the case needs them. The
reader's own tests (tests/pipeline/test_collect.py) check these cases in detail;
these tables check that ``training.train`` and ``router train`` pass the same
errors and warnings on.
"""

import csv
import json
from pathlib import Path

from router.errors import LogError, PriceError
from tests.conftest import SMALL_MODELS, small_log_rows

COLUMNS = ["prompt", "model", "score", "cost_usd", "task"]
N_ANSWERS = 3 * 20 * len(SMALL_MODELS)


def write_rows(folder: Path, rows: list[dict], columns=COLUMNS) -> Path:
    path = folder / "logs.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def changed(change) -> callable:
    """Return a case that applies ``change`` to a copy of the small log's rows."""

    def write(folder: Path) -> dict:
        rows = [dict(row) for row in small_log_rows()]
        result = change(rows)
        return {"logs": write_rows(folder, result if result is not None else rows)}

    return write


def set_first(column: str, value, model: str = "cheap-model"):
    def change(rows):
        next(row for row in rows if row["model"] == model)[column] = value
    return change


def raw_file(name: str, data: bytes) -> callable:
    def write(folder: Path) -> dict:
        path = folder / name
        path.write_bytes(data)
        return {"logs": path}
    return write


def without_column(column: str, **options) -> callable:
    def write(folder: Path) -> dict:
        columns = [c for c in COLUMNS if c != column]
        return {"logs": write_rows(folder, small_log_rows(), columns), **options}
    return write


def not_utf8(folder: Path) -> dict:
    path = write_rows(folder, small_log_rows())
    data = path.read_bytes().replace(b"bridge number 5 ", b"bridge n\xe9 5 ", 1)
    path.write_bytes(data)
    return {"logs": path}


def unpaired_surrogate(folder: Path) -> dict:
    rows = small_log_rows()
    rows[0]["prompt"] = "broken \ud800 text"
    path = folder / "logs.jsonl"
    # json.dumps escapes the lone surrogate as \ud800, as a buggy logger would.
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    return {"logs": path}


def prices_without(model: str, *, logged_costs: bool) -> callable:
    def write(folder: Path) -> dict:
        columns = COLUMNS if logged_costs else [c for c in COLUMNS if c != "cost_usd"]
        prices = {name: {"per_call_usd": 0.5} for name in SMALL_MODELS if name != model}
        price_file = folder / "prices.json"
        price_file.write_text(json.dumps(prices), encoding="utf-8")
        return {"logs": write_rows(folder, small_log_rows(), columns),
                "prices": price_file}
    return write


def only_model(model: str):
    def change(rows):
        return [row for row in rows if row["model"] == model]
    return change


def all_scores(value):
    def change(rows):
        for row in rows:
            row["score"] = value
    return change


def graded(rows):
    for row in rows:
        row["score"] = 0.7 if row["score"] == 1.0 else 0.2


def blank_prompts(count: int):
    def change(rows):
        for row in rows[:count]:
            row["prompt"] = " \t "
    return change


def every_prompt_blank(rows):
    for row in rows:
        row["prompt"] = "   "


def ghost_model(rows):
    prompts = list(dict.fromkeys(row["prompt"] for row in rows))[:20]
    rows += [{"prompt": p, "model": "ghost-model", "score": "", "cost_usd": 1.0,
              "task": "x"} for p in prompts]


def conflicting_duplicate(rows):
    first = dict(rows[0])
    first["score"] = 1.0 - first["score"]
    rows.append(first)


def unanswered_essays(rows):
    essays = [row["prompt"] for row in rows if row["task"] == "essay"][::3][:2]
    for row in rows:
        if row["prompt"] in essays:
            row["score"] = 0.0


# id: (write, exception type, message pattern)
ERROR_CASES = {
    "empty_file": (raw_file("logs.csv", b""), LogError, r"is empty \(0 bytes\)"),
    "header_only": (
        raw_file("logs.csv", b"prompt,model,score,cost_usd\n"),
        LogError,
        r"has no rows \(columns found: \['prompt', 'model', 'score', 'cost_usd'\]\)",
    ),
    "missing_score_column": (
        without_column("score"),
        LogError,
        r"from its columns \['prompt', 'model', 'cost_usd', 'task'\]\..*"
        r"For the long format it lacks 'score'\.",
    ),
    "missing_model_column_long": (
        without_column("model", format="long"),
        LogError,
        r"has no column 'model', which long-format logs require; columns found: "
        r"\['prompt', 'score', 'cost_usd', 'task'\]",
    ),
    "nan_cost": (
        changed(set_first("cost_usd", "nan")),
        LogError,
        r"1 answer with a NaN, infinite or negative cost: .*model 'cheap-model': "
        r"1 answer, for example cost nan in data row 1",
    ),
    "infinite_cost": (
        changed(set_first("cost_usd", "inf")),
        LogError,
        r"NaN, infinite or negative cost: .*for example cost inf in data row 1",
    ),
    "negative_cost": (
        changed(set_first("cost_usd", -0.25)),
        LogError,
        r"NaN, infinite or negative cost: .*for example cost -0\.25 in data row 1",
    ),
    "score_above_one": (
        changed(set_first("score", 1.5)),
        LogError,
        r"must contain scores in \[0, 1\] .*1 invalid value, for example '1\.5' in "
        r"data row 1",
    ),
    "negative_score": (
        changed(set_first("score", -1)),
        LogError,
        r"must contain scores in \[0, 1\] .*for example '-1' in data row 1",
    ),
    "infinite_score": (
        changed(set_first("score", "inf")),
        LogError,
        r"must contain scores in \[0, 1\] .*for example 'inf'",
    ),
    "single_model": (
        changed(only_model("big-model")),
        LogError,
        r"routing needs at least two models; found only 'big-model'\. Add logs",
    ),
    "not_utf8": (
        not_utf8,
        LogError,
        r"logs\.csv is not valid UTF-8: byte 0xe9 at byte offset \d+ \(line \d+\)",
    ),
    "unpaired_surrogate": (
        unpaired_surrogate,
        LogError,
        r"column 'prompt' of .*logs\.jsonl has an unpaired surrogate '\\ud800' in "
        r"data row 1",
    ),
    "no_cost_no_prices": (
        without_column("cost_usd"),
        PriceError,
        r"log no cost for 180 answers of 'big-model', 'cheap-model', 'mid-model'\. "
        r"Pass a price file",
    ),
    "price_file_lacks_model": (
        prices_without("big-model", logged_costs=False),
        PriceError,
        r"prices\.json has no price for 'big-model', and .* log no cost for their 60 "
        r"answers; add these models to the price file",
    ),
    "no_correct_answer": (
        changed(all_scores(0.0)),
        LogError,
        r"none of the 180 answers has a score at or above the threshold 1 \(the "
        r"highest score is 0\)",
    ),
    "graded_scores_threshold": (
        changed(graded),
        LogError,
        r"the highest score is 0\.7\), .* such as --threshold 0\.5 for graded scores",
    ),
    "every_prompt_blank": (
        changed(every_prompt_blank),
        LogError,
        r"no answers left after dropped 180 answers with an empty or whitespace-only "
        r"prompt",
    ),
}

# id: (write, warning message patterns, manifest data.changes, answers kept)
WARNING_CASES = {
    "nan_score": (
        changed(set_first("score", "nan")),
        [r"dropped 1 answer with no score: 1 in .*logs\.csv$"],
        {"score_missing": 1},
        N_ANSWERS - 1,
    ),
    "blank_prompts": (
        changed(blank_prompts(3)),
        [r"dropped 3 answers with an empty or whitespace-only prompt: 3 in "],
        {"prompt_blank": 3},
        N_ANSWERS - 3,
    ),
    "model_without_answers": (
        changed(ghost_model),
        [r"dropped 20 answers with no score: 20 in ",
         r"left out 1 model with no answers left: 'ghost-model'$"],
        {"score_missing": 20, "model_empty": 1},
        N_ANSWERS,
    ),
    "conflicting_duplicate": (
        changed(conflicting_duplicate),
        [r"merged answers of one model to the same prompt into one, removing 1 row; "
         r"the merged answer has the mean score and the mean cost"],
        {"duplicate_merged": 1},
        N_ANSWERS,
    ),
    "price_file_lacks_model": (
        prices_without("big-model", logged_costs=True),
        [r"replaced the logged cost of 120 answers with the price file's cost: 120 "
         r"in "],
        {"cost_from_prices": 120},
        N_ANSWERS,
    ),
}
