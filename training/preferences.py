"""Read pairwise preference logs, such as Chatbot Arena's, as scored answers.

A preference log has one row per comparison: a prompt, the two models that
answered it, and which answer a judge preferred.

| prompt | model_a | model_b | winner |
|---|---|---|---|
| What is 17 + 25? | small-model | big-model | tie |
| Prove the four colour theorem. | small-model | big-model | model_b |

Each comparison becomes one answer per model, scored by this rule:

================================ ============= =============
``winner`` (any letter case)     model_a score model_b score
================================ ============= =============
``model_a`` or ``a``             1             0
``model_b`` or ``b``             0             1
``tie``                          1             1
``tie (bothbad)`` or ``both_bad`` 0            0
================================ ============= =============

A tie counts as two good answers and a both-bad tie as two wrong ones, so the
score says whether an answer was good enough, as the other formats' scores do.
A model compared on the same prompt several times gets the mean of its scores
there, by the duplicate rule of :func:`training.collect.read_logs`, which counts
the merged rows in its ``duplicate_merged`` warning. A comparison without a
winner is dropped as ``score_missing``, and a comparison of a model with itself,
which says nothing about the model, as ``preference_same_model``.

Preference logs carry no costs, so training on them needs a price file. The
columns ``prompt_id`` and ``task`` are optional. ``read_logs(format="auto")``
takes a file for a preference log when its columns are the four above plus at
most those two; ``format="preferences"`` reads files with more columns too, such
as Arena exports, and ignores the extra ones.
"""

from pathlib import Path

import polars as pl

from router.errors import LogError

REQUIRED_COLUMNS = ("prompt", "model_a", "model_b", "winner")
OPTIONAL_COLUMNS = ("prompt_id", "task")

# Winner value to the scores of model_a and model_b.
WINNER_SCORES = {
    "model_a": (1.0, 0.0),
    "a": (1.0, 0.0),
    "model_b": (0.0, 1.0),
    "b": (0.0, 1.0),
    "tie": (1.0, 1.0),
    "tie (bothbad)": (0.0, 0.0),
    "both_bad": (0.0, 0.0),
}


def is_preference_log(columns) -> bool:
    """Tell whether a file's columns are exactly those of a preference log."""
    columns = set(columns)
    allowed = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    return set(REQUIRED_COLUMNS) <= columns <= allowed


def read_preferences(table: pl.DataFrame, path: Path, changes) -> tuple[
        pl.DataFrame, list[str]]:
    """Return the answers of a preference log and the models it names.

    The answers have the columns of :func:`training.collect.read_logs`' readers,
    two per comparison, with no cost.
    """
    for column in REQUIRED_COLUMNS:
        if column not in table.columns:
            msg = (
                f"{path} has no column {column!r}, which preference logs require "
                f"({', '.join(REQUIRED_COLUMNS)}); columns found: {table.columns}"
            )
            raise LogError(msg)
    model_a = _model_names(table, "model_a", path)
    model_b = _model_names(table, "model_b", path)
    score_a, score_b = _winner_scores(table["winner"], path)

    same = (model_a == model_b).to_numpy()
    changes.add("preference_same_model", str(path), 2 * int(same.sum()))
    shared = pl.DataFrame({
        "prompt_id": _optional_text(table, "prompt_id"),
        "prompt": table["prompt"].cast(pl.String),
        "task": _optional_text(table, "task"),
    }).with_columns(
        pl.lit(str(path)).alias("source"),
        pl.int_range(1, pl.len() + 1).alias("_row"),
    )
    sides = []
    for models, scores in ((model_a, score_a), (model_b, score_b)):
        sides.append(shared.with_columns(
            models.alias("model"),
            scores.alias("score"),
            pl.lit(None, dtype=pl.Float64).alias("cost_usd"),
            pl.lit(None, dtype=pl.Int64).alias("input_tokens"),
            pl.lit(None, dtype=pl.Int64).alias("output_tokens"),
            pl.lit(None, dtype=pl.Int64).alias("response_chars"),
        ).filter(~pl.Series(same)))
    answers = pl.concat(sides)
    models = sorted(set(model_a.to_list()) | set(model_b.to_list()))
    return answers, models


def _optional_text(table: pl.DataFrame, column: str) -> pl.Series:
    if column not in table.columns:
        return pl.Series(column, [None] * table.height, dtype=pl.String)
    blank_as_null = (
        pl.when(pl.col(column).str.strip_chars() == "")
        .then(None)
        .otherwise(pl.col(column))
        .alias(column)
    )
    text = table.select(pl.col(column).cast(pl.String))
    return text.select(blank_as_null).to_series()


def _model_names(table: pl.DataFrame, column: str, path: Path) -> pl.Series:
    names = table[column].cast(pl.String)
    missing = (names.is_null() | (names.str.strip_chars() == "")).to_numpy()
    if missing.any():
        row = int(missing.argmax()) + 1
        msg = (
            f"{path} has {int(missing.sum()):,} comparisons with no model name in "
            f"column {column!r}, for example data row {row}; fill in both models "
            "of every comparison"
        )
        raise LogError(msg)
    return names


def _winner_scores(winner: pl.Series, path: Path) -> tuple[pl.Series, pl.Series]:
    text = winner.cast(pl.String).str.strip_chars().str.to_lowercase()
    blank = (text.is_null() | (text == "")).fill_null(True).to_numpy()
    known = text.is_in(list(WINNER_SCORES)).fill_null(False).to_numpy()
    invalid = ~blank & ~known
    if invalid.any():
        row = int(invalid.argmax())
        accepted = ", ".join(repr(value) for value in WINNER_SCORES)
        msg = (
            f"column 'winner' of {path} must contain one of {accepted}, but has "
            f"{int(invalid.sum()):,} other values, for example {winner[row]!r} in "
            f"data row {row + 1}; fix or remove these comparisons"
        )
        raise LogError(msg)
    pairs = [WINNER_SCORES.get(value, (None, None)) for value in text.to_list()]
    score_a = pl.Series("score", [a for a, _ in pairs], dtype=pl.Float64)
    score_b = pl.Series("score", [b for _, b in pairs], dtype=pl.Float64)
    return score_a, score_b
