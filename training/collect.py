"""Read logged LLM answers into one table of (prompt, model, score, cost) rows.

:func:`read_logs` reads four formats and detects the format of each file from
its columns:

``long``
    One row per answer, with the columns ``prompt``, ``model``, ``score`` and
    ``cost_usd``, and optionally ``prompt_id``, ``task``, ``input_tokens``,
    ``output_tokens`` and ``response``. Parquet, CSV, JSON Lines (``.jsonl``,
    ``.ndjson``) or a JSON array of records (``.json``). In JSON and Parquet a
    prompt may also be a list of turns or a list of OpenAI-style messages. A
    score is 1/0, True/False or a grade in [0, 1].
``routerbench``
    RouterBench's wide CSV: one row per prompt, with ``sample_id``, ``prompt``
    (a Python list literal of turns), ``eval_name`` (read as the task), and per
    model a score column ``<model>``, a cost column ``<model>|total_cost`` and
    ``<model>|model_response``.
``routellm``
    RouteLLM's MMLU CSV: ``prompt`` and one True/False column per model, with no
    cost, so a price file is required. The task is the file name without its
    extension, such as ``mmlu_anatomy``. RouteLLM leaves the prompts listed in
    ``contaminated_prompts.jsonl`` out of its MMLU evaluation because they are
    too close to its training data. When that file sits in the same folder as a
    RouteLLM log, answers to prompts whose text equals one of its
    ``eval_prompt`` values are dropped too.
``preferences``
    Pairwise preferences, Chatbot Arena style: ``prompt``, ``model_a``,
    ``model_b`` and ``winner``, scored as :mod:`training.preferences`
    describes. They have no cost, so a price file is required.

Reading cleans the answers in this order, and counts every row it drops or
changes in :attr:`Logs.changes`, by reason. The counts are answers, one per
prompt and model as in :attr:`Logs.frame`, except ``model_empty``, which counts
models. Each reason also emits one :class:`LogDataWarning` per call, with the
count per file.

``contaminated_prompt``
    Answers to a RouteLLM prompt listed as contaminated, dropped.
``preference_same_model``
    Answers from preference-log comparisons of a model with itself, dropped
    (two per comparison) while the file is read.
``prompt_not_list_literal``
    Answers whose RouterBench prompt is not a Python list literal, so the raw
    string is kept as the prompt text.
``prompt_blank``
    Answers with an empty or whitespace-only prompt, dropped.
``score_missing``
    Answers with no score (empty or NaN), dropped. A missing answer is
    unknown, not wrong, so a model may lack answers to some prompts.
``cost_from_prices``
    Answers whose logged cost was replaced by the price file's cost. The price
    file wins because passing one means the user re-prices the logs.
``prompt_id_conflict``
    Answers whose logged ``prompt_id`` was replaced by the first id logged for
    the same prompt text. Two rows with the same prompt text are the same
    prompt, in one file or across files.
``prompt_id_reused``
    Answers whose id was first logged for a different prompt text, so their id
    gets ``#`` and the first 8 hex digits of the SHA-1 of their text appended.
``task_conflict``
    Answers whose task was set to the first task logged for the same prompt,
    so that each prompt has one task.
``duplicate_merged``
    Rows removed by merging answers of the same model to the same prompt. The
    merged answer has the mean score (answers scored 1 and 0 merge into 0.5), the
    mean cost, the rounded mean token counts and the first file as ``source``.
``model_empty``
    Models that have no answers left; they are left out of :attr:`Logs.models`.

"First" means first in reading order: files in the order given, with each
folder's files sorted by path, then rows in file order. A prompt without a
logged id gets the first 16 hex digits of the SHA-1 of its UTF-8 text.

Costs come from the logs or from a price file (see :mod:`training.prices`).
Per-million prices use the logged ``input_tokens`` and ``output_tokens``. A
missing count is estimated as ``ceil(characters / 4)`` of the prompt text, or of
the response text when the log has one, which is a rule of thumb for English
text. An answer priced per million with neither an ``output_tokens`` count nor a
response raises :class:`~router.errors.PriceError`.
"""

import ast
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from router._text import prompt_text
from router.errors import LogError, PriceError
from training.preferences import is_preference_log, read_preferences
from training.prices import Prices, load_prices

logger = logging.getLogger(__name__)

FORMATS = ("auto", "long", "routerbench", "routellm", "preferences")
LOG_SUFFIXES = (".csv", ".parquet", ".jsonl", ".ndjson", ".json")
CONTAMINATION_FILE = "contaminated_prompts.jsonl"

# Columns of the returned frame, in order.
FRAME_SCHEMA = {
    "prompt_id": pl.String,
    "prompt": pl.String,
    "model": pl.String,
    "score": pl.Float64,
    "cost_usd": pl.Float64,
    "task": pl.String,
    "input_tokens": pl.Int64,
    "output_tokens": pl.Int64,
    "source": pl.String,
}
# Columns of the answers while they are cleaned. ``response_chars`` feeds the
# output token estimate, and ``_row`` (the 1-based data row in its file) names
# example rows in messages.
_ANSWER_SCHEMA = {**FRAME_SCHEMA, "response_chars": pl.Int64, "_row": pl.Int64}

_ROUTERBENCH_META = frozenset(
    {"", "Unnamed: 0", "sample_id", "prompt", "eval_name", "oracle_model_to_route_to"}
)
_COST_SUFFIX = "|total_cost"
_RESPONSE_SUFFIX = "|model_response"
_TRUE_FALSE = ("true", "false")

_CHANGE_MESSAGES = {
    "contaminated_prompt": (
        f"dropped {{answers}} to prompts listed in {CONTAMINATION_FILE}"
    ),
    "prompt_not_list_literal": (
        "kept the raw prompt string of {answers} whose prompt is not a Python "
        "list literal"
    ),
    "prompt_blank": "dropped {answers} with an empty or whitespace-only prompt",
    "score_missing": "dropped {answers} with no score",
    "cost_from_prices": (
        "replaced the logged cost of {answers} with the price file's cost"
    ),
    "prompt_id_conflict": (
        "gave {answers} the first prompt_id logged for the same prompt text"
    ),
    "prompt_id_reused": (
        "appended '#' and a hash of the text to the prompt_id of {answers}, "
        "because that id was first logged for a different prompt text"
    ),
    "task_conflict": (
        "set the task of {answers} to the first task logged for the same prompt"
    ),
    "duplicate_merged": (
        "merged answers of one model to the same prompt into one, removing {rows}; "
        "the merged answer has the mean score and the mean cost"
    ),
    "model_empty": "left out {models} with no answers left",
    "preference_same_model": (
        "dropped {answers} from comparisons of a model with itself"
    ),
}


class LogDataWarning(UserWarning):
    """Answers in the logs were dropped or changed while reading them."""


@dataclass(frozen=True, eq=False)
class Logs:
    """Logged answers, one row per (prompt, model), cleaned and costed.

    Attributes
    ----------
    frame : polars.DataFrame
        Columns ``prompt_id``, ``prompt``, ``model``, ``score`` (in [0, 1]),
        ``cost_usd`` (finite, >= 0), ``task``, ``input_tokens``,
        ``output_tokens`` and ``source`` (the file the answer came from), sorted
        by ``prompt_id`` then ``model``.
    files : tuple of str
        The files read, in reading order.
    format : tuple of str
        The format of each file in ``files``.
    models : tuple of str
        The models with at least one answer, sorted.
    changes : dict of str to int
        Number of answers dropped or changed, by reason; see the module docstring.
    """

    frame: pl.DataFrame
    files: tuple[str, ...]
    format: tuple[str, ...]
    models: tuple[str, ...]
    changes: dict[str, int]

    @property
    def n_prompts(self) -> int:
        """Number of distinct prompts."""
        return self.frame["prompt_id"].n_unique()


def read_logs(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    format: str = "auto",
    prices: str | os.PathLike | Prices | None = None,
) -> Logs:
    """Read log files into one cleaned table of answers.

    The module docstring lists the formats and the cleaning rules.

    Parameters
    ----------
    paths : str, path-like, or a list of them
        Log files and folders. A folder means every file in it and its
        subfolders with a log extension (``.csv``, ``.parquet``, ``.jsonl``,
        ``.ndjson``, ``.json``), sorted by path. Files in a folder whose columns
        match no format, such as ``contaminated_prompts.jsonl``, are skipped
        with an INFO log line, but a file named in ``paths`` must match.
    format : str, default "auto"
        The format of every file, one of :data:`FORMATS` ("long",
        "routerbench", "routellm", "preferences"), or "auto" to detect it per
        file.
    prices : str, path-like or Prices, optional
        A price file or loaded prices. Answers of a priced model take their
        cost from it, even when the logs have a cost.

    Returns
    -------
    Logs

    Raises
    ------
    LogError
        If a file is empty, unreadable, not UTF-8 or lacks a required column.
        Also if scores or costs are invalid, or fewer than two models have
        answers.
    PriceError
        If answers have no cost and no price, or a price file is invalid.

    Warns
    -----
    LogDataWarning
        Once per reason for which answers were dropped or changed.

    Examples
    --------
    >>> logs = read_logs("logs/", prices="prices.json")  # doctest: +SKIP
    >>> logs.models  # doctest: +SKIP
    ('gpt-4-1106-preview', 'mistralai/Mixtral-8x7B-Instruct-v0.1')
    """
    _check_format(format)
    prices = _resolve_prices(prices)
    changes = _ChangeLog()

    paths = _as_paths(paths)
    parts, files, formats, models_seen = [], [], [], set()
    for path, named in _list_files(paths):
        result = _read_file(path, format, named, changes)
        if result is None:
            continue
        answers, kind, models = result
        parts.append(answers)
        files.append(str(path))
        formats.append(kind)
        models_seen.update(models)
    if not parts:
        msg = (
            f"no file in {', '.join(map(str, paths))} has the columns of a log "
            "format; name a file in paths to see its columns, and see "
            "training.collect for the formats"
        )
        raise LogError(msg)

    frame = pl.concat(parts).with_row_index("_order")
    frame = _clean(frame, prices, changes)
    models = _check_models(frame, models_seen, changes)
    changes.warn()

    frame = frame.sort("prompt_id", "model").select(
        pl.col(name).cast(dtype) for name, dtype in FRAME_SCHEMA.items()
    )
    logs = Logs(frame, tuple(files), tuple(formats), models, changes.totals())
    logger.info(
        "kept %d answers to %d prompts from %d models in %d files",
        frame.height,
        logs.n_prompts,
        len(models),
        len(files),
    )
    return logs


def _check_format(format: object) -> None:
    if format not in FORMATS:
        accepted = ", ".join(map(repr, FORMATS))
        msg = f"unknown log format {format!r}; accepted values are {accepted}"
        raise LogError(msg)


def _resolve_prices(prices: object) -> Prices | None:
    if prices is None or isinstance(prices, Prices):
        return prices
    if isinstance(prices, (str, os.PathLike)):
        return load_prices(prices)
    msg = f"prices must be a path, a Prices object or None; got {type(prices).__name__}"
    raise TypeError(msg)


# Finding the files


def _as_paths(paths: object) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    elif not isinstance(paths, Iterable):
        msg = f"paths must be a path or a list of paths; got {type(paths).__name__}"
        raise TypeError(msg)
    paths = [Path(path) for path in paths]
    if not paths:
        msg = "no log paths given; pass a log file, a folder or a list of them"
        raise LogError(msg)
    return paths


def _list_files(paths: list[Path]) -> list[tuple[Path, bool]]:
    """List the log files under ``paths``, each with whether it was named."""
    found = []
    for path in paths:
        if path.is_dir():
            found.extend((file, False) for file in _list_folder(path))
        elif path.is_file():
            found.append((path, True))
        else:
            msg = f"log path not found: {path}"
            raise LogError(msg)
    return _drop_repeated_files(found)


def _list_folder(folder: Path) -> list[Path]:
    files = []
    for path in sorted(folder.rglob("*"), key=lambda path: path.as_posix()):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in LOG_SUFFIXES:
            files.append(path)
        else:
            logger.info(
                "skipping %s: %r is not a log file extension", path, path.suffix
            )
    if not files:
        msg = f"no log files in folder {folder}; looked for {', '.join(LOG_SUFFIXES)}"
        raise LogError(msg)
    return files


def _drop_repeated_files(found: list[tuple[Path, bool]]) -> list[tuple[Path, bool]]:
    """Keep the first of several paths to one file, so its rows are read once."""
    seen, unique = set(), []
    for path, named in found:
        key = path.resolve()
        if key in seen:
            logger.info("skipping %s: it was already read", path)
            continue
        seen.add(key)
        unique.append((path, named))
    return unique


# Reading one file


def _read_file(
    path: Path, format: str, named: bool, changes: "_ChangeLog"
) -> tuple[pl.DataFrame, str, list[str]] | None:
    """Read one file as answers, or return None for a folder's non-log file."""
    table = _read_table(path)
    detected = _detect_format(table)
    if detected is None and not named:
        logger.info(
            "skipping %s: its columns %s match no log format", path, table.columns
        )
        return None
    if format != "auto":
        kind = format
    elif detected is not None:
        kind = detected
    else:
        missing = [c for c in ("prompt", "model", "score") if c not in table.columns]
        msg = (
            f"cannot tell the log format of {path} from its columns {table.columns}. "
            "Expected 'long' (prompt, model, score, cost_usd), 'routerbench' "
            "(prompt, <model>, <model>|total_cost), 'routellm' (prompt and one "
            "True/False column per model) or 'preferences' (prompt, model_a, "
            "model_b, winner). For the long format it lacks "
            f"{_quoted(missing)}."
        )
        raise LogError(msg)

    answers, models = _READERS[kind](table, path, changes)
    answers = answers.select(
        pl.col(name).cast(dtype) for name, dtype in _ANSWER_SCHEMA.items()
    )
    logger.info(
        "read %s as %s: %d answers from %d models",
        path,
        kind,
        answers.height,
        len(models),
    )
    return answers, kind, models


def _read_table(path: Path) -> pl.DataFrame:
    """Read a file into a frame whose ``prompt`` column, if any, is text."""
    suffix = path.suffix.lower()
    if suffix not in LOG_SUFFIXES:
        msg = (
            f"{path} has the unsupported extension {suffix!r}; log files must be "
            f"{', '.join(LOG_SUFFIXES)}. Convert a pandas pickle with "
            "pandas.read_pickle(path).to_csv(new_path)."
        )
        raise LogError(msg)
    if path.stat().st_size == 0:
        msg = f"log file {path} is empty (0 bytes); fill it or remove it"
        raise LogError(msg)

    if suffix == ".csv":
        table = _read_csv(path)
    elif suffix == ".parquet":
        table = _read_parquet(path)
    elif suffix == ".json":
        table = _read_json_array(path)
    else:
        table = _read_json_lines(path)

    if table.height == 0:
        raise _no_rows(path, table.columns)
    return table


def _read_csv(path: Path) -> pl.DataFrame:
    # Every column is read as text, and the readers parse the columns they use,
    # so that a stray value names its column and row instead of failing type
    # inference somewhere in the file.
    try:
        return pl.read_csv(path, infer_schema=False, encoding="utf8")
    except pl.exceptions.NoDataError:
        msg = f"log file {path} is empty; fill it or remove it"
        raise LogError(msg) from None
    except pl.exceptions.ComputeError as error:
        if "utf-8" in str(error).lower():
            raise _utf8_error(path, path.read_bytes()) from None
        msg = f"cannot parse {path} as CSV: {error}"
        raise LogError(msg) from None
    except pl.exceptions.PolarsError as error:
        msg = f"cannot parse {path} as CSV: {error}"
        raise LogError(msg) from None


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        table = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        msg = f"cannot read {path} as Parquet: {error}"
        raise LogError(msg) from None
    if "prompt" in table.columns and table.schema["prompt"] != pl.String:
        texts = _prompt_texts(table["prompt"].to_list(), path)
        table = table.with_columns(pl.Series("prompt", texts, dtype=pl.String))
    return table


def _read_json_lines(path: Path) -> pl.DataFrame:
    text = _decode_utf8(path)
    records = []
    # Split on "\n" only: str.splitlines would also split on U+2028 and other
    # separators, which JSON allows unescaped inside strings.
    for line_number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            records.append(_json_line(line, path, line_number))
    return _records_to_frame(records, path)


def _json_line(line: str, path: Path, line_number: int) -> object:
    """Parse one line of a JSON Lines file, naming the line if it is invalid."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        msg = (
            f"line {line_number} of {path} is not valid JSON: {error.msg} "
            f"(column {error.colno})"
        )
        raise LogError(msg) from None


def _read_json_array(path: Path) -> pl.DataFrame:
    try:
        records = json.loads(_decode_utf8(path))
    except json.JSONDecodeError as error:
        msg = (
            f"{path} is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}"
        )
        raise LogError(msg) from None
    if not isinstance(records, list):
        msg = (
            f"{path} must contain a JSON array of records; got a "
            f"{type(records).__name__}. Write one record per line as .jsonl instead."
        )
        raise LogError(msg)
    return _records_to_frame(records, path)


def _decode_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _utf8_error(path, data) from None


def _utf8_error(path: Path, data: bytes) -> LogError:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return _not_utf8(path, data[error.start], error.start, line)
    # Reached only if polars reports invalid UTF-8 in a file that Python decodes.
    return LogError(f"{path} is not valid UTF-8; re-encode the file as UTF-8")


def _not_utf8(path: Path, byte: int, offset: int, line: int) -> LogError:
    """Return the error for the first byte of ``path`` that is not UTF-8."""
    msg = (
        f"{path} is not valid UTF-8: byte 0x{byte:02x} at byte offset {offset} "
        f"(line {line}) cannot be decoded. Re-encode the file as UTF-8, for "
        "example with `iconv -f <its encoding> -t utf-8`."
    )
    return LogError(msg)


def _no_rows(path: Path, columns: list[str]) -> LogError:
    """Return the error for a log file that has no data rows."""
    msg = (
        f"log file {path} has no rows (columns found: {columns}); fill it or "
        "remove it"
    )
    return LogError(msg)


def _records_to_frame(records: list, path: Path, first_row: int = 1) -> pl.DataFrame:
    """Turn JSON records into a frame of text columns, prompts made text.

    ``first_row`` is the data row number of the first record, for messages.
    """
    for position, record in enumerate(records, start=first_row):
        if not isinstance(record, dict):
            msg = (
                f"record {position} of {path} is a {type(record).__name__}; "
                "each record must be a JSON object"
            )
            raise LogError(msg)
    columns = list(dict.fromkeys(key for record in records for key in record))
    data = {}
    for column in columns:
        values = [record.get(column) for record in records]
        if column == "prompt":
            data[column] = _prompt_texts(values, path, first_row)
        else:
            data[column] = [_json_scalar_text(value) for value in values]
    try:
        return pl.DataFrame(data, schema=dict.fromkeys(columns, pl.String))
    except UnicodeEncodeError:
        raise _surrogate_error(data, path, first_row) from None


def _surrogate_error(data: dict, path: Path, first_row: int = 1) -> LogError:
    """Name the first text with an unpaired surrogate, which UTF-8 cannot encode.

    JSON may spell one as an escape such as ``\\ud800``; polars stores UTF-8.
    """
    for column, values in data.items():
        for row, value in enumerate([column, *values]):
            if value is None:
                continue
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                where = "its name" if row == 0 else f"data row {row + first_row - 1}"
                msg = (
                    f"column {column!r} of {path} has an unpaired surrogate "
                    f"{value[error.start]!r} in {where}, which is not valid Unicode. "
                    "Fix the \\u escapes of that text, for example write the "
                    "emoji 😀 as \\ud83d\\ude00."
                )
                return LogError(msg)
    return LogError(f"{path} has text that is not valid Unicode")


def _json_scalar_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _prompt_texts(values: list, path: Path, first_row: int = 1) -> list[str | None]:
    texts = []
    for row, value in enumerate(values, start=first_row):
        try:
            texts.append(None if value is None else prompt_text(value))
        except TypeError as error:
            msg = f"the prompt in data row {row} of {path} is invalid: {error}"
            raise LogError(msg) from None
    return texts


def _detect_format(table: pl.DataFrame) -> str | None:
    columns = set(table.columns)
    if "prompt" not in columns:
        return None
    if is_preference_log(columns):
        return "preferences"
    if any(column.endswith(_COST_SUFFIX) for column in columns):
        return "routerbench"
    if {"model", "score"} <= columns:
        return "long"
    models = [column for column in table.columns if column != "prompt"]
    if models and all(_is_true_false(table[column]) for column in models):
        return "routellm"
    return None


def _is_true_false(values: pl.Series) -> bool:
    if values.dtype == pl.Boolean:
        return True
    if values.dtype != pl.String:
        return False
    return bool(
        values.drop_nulls()
        .str.strip_chars()
        .str.to_lowercase()
        .is_in(_TRUE_FALSE)
        .all()
    )


def _require_columns(
    table: pl.DataFrame, required: Iterable[str], path: Path, kind: str
) -> None:
    for column in required:
        if column not in table.columns:
            msg = (
                f"{path} has no column {column!r}, which {kind} logs require; "
                f"columns found: {table.columns}"
            )
            raise LogError(msg)


# The three formats


def _read_long(
    table: pl.DataFrame, path: Path, changes: "_ChangeLog"
) -> tuple[pl.DataFrame, list[str]]:
    _require_columns(table, ("prompt", "model", "score"), path, "long-format")
    models = _parse_models(table["model"], path)

    answers = pl.DataFrame(
        {
            "prompt_id": _optional_text(table, "prompt_id"),
            "prompt": table["prompt"].cast(pl.String),
            "model": models,
            "score": _parse_scores(table["score"], path, "score"),
            "cost_usd": _optional_numbers(table, "cost_usd", path),
            "task": _optional_text(table, "task"),
            "input_tokens": _optional_counts(table, "input_tokens", path),
            "output_tokens": _optional_counts(table, "output_tokens", path),
            "response_chars": _optional_text(table, "response").str.len_chars(),
        }
    )
    answers = answers.with_columns(
        pl.lit(str(path)).alias("source"),
        pl.int_range(1, pl.len() + 1).alias("_row"),
    )
    return answers, models.unique().sort().to_list()


def _read_routerbench(
    table: pl.DataFrame, path: Path, changes: "_ChangeLog"
) -> tuple[pl.DataFrame, list[str]]:
    _require_columns(table, ("prompt",), path, "RouterBench")
    models = _routerbench_models(table, path)
    prompts, not_literal = _parse_turn_lists(table["prompt"])
    changes.add("prompt_not_list_literal", str(path), not_literal * len(models))

    shared = pl.DataFrame(
        {
            "prompt_id": _optional_text(table, "sample_id"),
            "prompt": prompts,
            "task": _optional_text(table, "eval_name"),
        }
    ).with_columns(
        pl.lit(str(path)).alias("source"),
        pl.int_range(1, pl.len() + 1).alias("_row"),
    )
    per_model = []
    for model in models:
        responses = _optional_text(table, model + _RESPONSE_SUFFIX)
        answers = shared.with_columns(
            pl.lit(model).alias("model"),
            _parse_scores(table[model], path, model).alias("score"),
            _optional_numbers(table, model + _COST_SUFFIX, path).alias("cost_usd"),
            pl.lit(None, dtype=pl.Int64).alias("input_tokens"),
            pl.lit(None, dtype=pl.Int64).alias("output_tokens"),
            _response_lengths(responses).alias("response_chars"),
        )
        per_model.append(answers)
    return pl.concat(per_model, how="diagonal"), models


def _routerbench_models(table: pl.DataFrame, path: Path) -> list[str]:
    models = [
        column
        for column in table.columns
        if "|" not in column and column not in _ROUTERBENCH_META
    ]
    for column in table.columns:
        model, _, _ = column.rpartition("|")
        if model and model not in models:
            msg = (
                f"{path} has the column {column!r} but no score column {model!r}; "
                "RouterBench logs have a score column per model"
            )
            raise LogError(msg)
    if not models:
        msg = f"{path} has no model score columns; columns found: {table.columns}"
        raise LogError(msg)
    return models


def _parse_turn_lists(prompts: pl.Series) -> tuple[pl.Series, int]:
    """Parse Python list literals of turns into text; count the failures."""
    texts, failures = [], 0
    for raw in prompts.to_list():
        text = _literal_text(raw)
        if text is None and raw is not None:
            failures += 1
            text = raw
        texts.append(text)
    return pl.Series("prompt", texts, dtype=pl.String), failures


def _literal_text(raw: str | None) -> str | None:
    """Return the text of a list literal of turns, or None if it is not one."""
    if raw is None:
        return None
    try:
        turns = ast.literal_eval(raw)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(turns, (list, tuple)):
        return None
    try:
        return prompt_text(turns)
    except TypeError:
        return None


def _response_lengths(responses: pl.Series) -> pl.Series:
    lengths = []
    for raw in responses.to_list():
        if not raw:
            lengths.append(None)
            continue
        text = _literal_text(raw)
        lengths.append(len(raw) if text is None else len(text))
    return pl.Series("response_chars", lengths, dtype=pl.Int64)


def _read_routellm(
    table: pl.DataFrame, path: Path, changes: "_ChangeLog"
) -> tuple[pl.DataFrame, list[str]]:
    _require_columns(table, ("prompt",), path, "RouteLLM")
    models = [column for column in table.columns if column != "prompt"]
    if not models:
        msg = f"{path} has no model columns; columns found: {table.columns}"
        raise LogError(msg)

    shared = pl.DataFrame({"prompt": table["prompt"].cast(pl.String)}).with_columns(
        pl.lit(path.stem).alias("task"),
        pl.lit(str(path)).alias("source"),
        pl.int_range(1, pl.len() + 1).alias("_row"),
    )
    per_model = [
        shared.with_columns(
            pl.lit(model).alias("model"),
            _parse_true_false(table[model], path, model).alias("score"),
        )
        for model in models
    ]
    answers = pl.concat(per_model).with_columns(
        pl.lit(None, dtype=pl.String).alias("prompt_id"),
        pl.lit(None, dtype=pl.Float64).alias("cost_usd"),
        pl.lit(None, dtype=pl.Int64).alias("input_tokens"),
        pl.lit(None, dtype=pl.Int64).alias("output_tokens"),
        pl.lit(None, dtype=pl.Int64).alias("response_chars"),
    )
    return _drop_contaminated(answers, path, changes), models


def _drop_contaminated(
    answers: pl.DataFrame, path: Path, changes: "_ChangeLog"
) -> pl.DataFrame:
    listing = path.parent / CONTAMINATION_FILE
    if not listing.is_file():
        return answers
    contaminated = _contaminated_prompts(listing)
    is_contaminated = pl.col("prompt").is_in(contaminated)
    changes.add(
        "contaminated_prompt", str(path), answers.filter(is_contaminated).height
    )
    return answers.filter(~is_contaminated)


def _contaminated_prompts(listing: Path) -> list[str]:
    table = _read_json_lines(listing)
    _require_columns(table, ("eval_prompt",), listing, "a contamination list")
    return table["eval_prompt"].drop_nulls().to_list()


_READERS: dict[str, Callable] = {
    "long": _read_long,
    "routerbench": _read_routerbench,
    "routellm": _read_routellm,
    "preferences": read_preferences,
}


# Parsing columns


def _optional_text(table: pl.DataFrame, column: str) -> pl.Series:
    """Return a text column with blanks as null, or nulls if it is absent."""
    if column not in table.columns:
        return pl.Series(column, [None] * table.height, dtype=pl.String)
    return (
        table.select(pl.col(column).cast(pl.String))
        .select(
            pl.when(pl.col(column).str.strip_chars() != "")
            .then(pl.col(column))
            .alias(column)
        )
        .to_series()
    )


def _optional_numbers(table: pl.DataFrame, column: str, path: Path) -> pl.Series:
    if column not in table.columns:
        return pl.Series(column, [None] * table.height, dtype=pl.Float64)
    return _to_float(table[column], path, column, true_false=False)


def _optional_counts(table: pl.DataFrame, column: str, path: Path) -> pl.Series:
    if column not in table.columns:
        return pl.Series(column, [None] * table.height, dtype=pl.Int64)
    counts = _to_float(table[column], path, column, true_false=False)
    invalid = counts.is_not_null() & (
        counts.is_nan()
        | counts.is_infinite()
        | (counts < 0)
        | (counts.floor() != counts)
    )
    _raise_for_invalid(invalid, table[column], path, column, "whole numbers >= 0")
    return counts.cast(pl.Int64)


def _parse_models(models: pl.Series, path: Path) -> pl.Series:
    names = models.cast(pl.String)
    missing = names.is_null() | (names.str.strip_chars() == "")
    if missing.any():
        row = missing.arg_true()[0] + 1
        msg = (
            f"{path} has {_plural(missing.sum(), 'answer')} with no model name in "
            f"column 'model', for example data row {row}; fill in the model of "
            "every answer"
        )
        raise LogError(msg)
    return names


def _parse_scores(values: pl.Series, path: Path, column: str) -> pl.Series:
    """Parse scores into floats in [0, 1], NaN and blanks as null."""
    scores = _to_float(values, path, column, true_false=True).fill_nan(None)
    outside = scores.is_not_null() & ((scores < 0) | (scores > 1))
    _raise_for_invalid(
        outside, values, path, column, "scores in [0, 1] (1/0, True/False or a grade)"
    )
    return scores


def _parse_true_false(values: pl.Series, path: Path, column: str) -> pl.Series:
    if not _is_true_false(values):
        text = values.cast(pl.String).str.strip_chars().str.to_lowercase()
        invalid = text.is_not_null() & ~text.is_in(_TRUE_FALSE)
        _raise_for_invalid(invalid, values, path, column, "True or False")
    return _parse_scores(values, path, column)


def _to_float(
    values: pl.Series, path: Path, column: str, *, true_false: bool
) -> pl.Series:
    """Parse a column into Float64, with blanks as null and 'nan' as NaN."""
    dtype = values.dtype
    if dtype == pl.Null:
        return values.cast(pl.Float64)
    if dtype.is_numeric() or (true_false and dtype == pl.Boolean):
        return values.cast(pl.Float64)
    if dtype != pl.String:
        msg = f"column {column!r} of {path} has type {dtype}; expected numbers"
        raise LogError(msg)

    text = pl.col("text")
    if true_false:
        lower = text.str.to_lowercase()
        text = (
            pl.when(lower == "true")
            .then(pl.lit("1"))
            .when(lower == "false")
            .then(pl.lit("0"))
            .otherwise(text)
        )
    parsed = (
        values.to_frame("text")
        .with_columns(pl.col("text").str.strip_chars())
        .select(
            text.cast(pl.Float64, strict=False).alias("number"),
            ((pl.col("text") != "") & text.cast(pl.Float64, strict=False).is_null())
            .fill_null(False)
            .alias("invalid"),
        )
    )
    numbers, invalid = parsed["number"], parsed["invalid"]
    kind = "numbers or True/False" if true_false else "numbers"
    _raise_for_invalid(invalid, values, path, column, kind)
    return numbers.alias(column)


def _raise_for_invalid(
    invalid: pl.Series, values: pl.Series, path: Path, column: str, expected: str
) -> None:
    if not invalid.any():
        return
    first = invalid.arg_true()[0]
    msg = (
        f"column {column!r} of {path} must contain {expected}, but has "
        f"{_plural(invalid.sum(), 'invalid value')}, for example {values[first]!r} "
        f"in data row {first + 1}; fix or remove these values"
    )
    raise LogError(msg)


# Cleaning the answers of all files


def _clean(
    frame: pl.DataFrame, prices: Prices | None, changes: "_ChangeLog"
) -> pl.DataFrame:
    frame = _drop_rows(frame, _is_blank("prompt"), "prompt_blank", changes)
    frame = _drop_rows(frame, pl.col("score").is_null(), "score_missing", changes)
    if frame.height == 0:
        msg = f"no answers left after {changes.describe()}"
        raise LogError(msg)
    if prices is not None:
        frame = _cost_from_prices(frame, prices, changes)
    _require_costs(frame, prices)
    _check_costs(frame)
    frame = _assign_prompt_ids(frame, changes)
    frame = _unify_tasks(frame, changes)
    return _merge_duplicates(frame, changes)


def _is_blank(column: str) -> pl.Expr:
    return pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "")


def _drop_rows(
    frame: pl.DataFrame, condition: pl.Expr, reason: str, changes: "_ChangeLog"
) -> pl.DataFrame:
    changes.add_rows(reason, frame.filter(condition))
    return frame.filter(~condition)


def _estimated_tokens(logged: str, chars: pl.Expr) -> pl.Expr:
    return pl.coalesce(pl.col(logged), (chars / 4).ceil().cast(pl.Int64))


def _cost_from_prices(
    frame: pl.DataFrame, prices: Prices, changes: "_ChangeLog"
) -> pl.DataFrame:
    priced = frame.join(
        prices.to_frame(), on="model", how="left", maintain_order="left"
    )
    per_million = pl.col("input_usd_per_million").is_not_null()
    input_tokens = _estimated_tokens("input_tokens", pl.col("prompt").str.len_chars())
    output_tokens = _estimated_tokens("output_tokens", pl.col("response_chars"))
    priced = priced.with_columns(
        input_tokens.alias("_input_tokens"),
        output_tokens.alias("_output_tokens"),
    )
    _require_output_tokens(priced.filter(per_million), prices)

    has_price = pl.col("per_call_usd").is_not_null() | per_million
    changes.add_rows(
        "cost_from_prices", priced.filter(has_price & pl.col("cost_usd").is_not_null())
    )
    per_million_cost = (
        pl.col("_input_tokens") * pl.col("input_usd_per_million")
        + pl.col("_output_tokens") * pl.col("output_usd_per_million")
    ) / 1e6
    cost = (
        pl.when(pl.col("per_call_usd").is_not_null())
        .then(pl.col("per_call_usd"))
        .when(per_million)
        .then(per_million_cost)
        .otherwise(pl.col("cost_usd"))
    )
    return priced.with_columns(cost.alias("cost_usd")).select(frame.columns)


def _require_output_tokens(per_million: pl.DataFrame, prices: Prices) -> None:
    missing = per_million.filter(pl.col("_output_tokens").is_null())
    if missing.height == 0:
        return
    models = sorted(missing["model"].unique())
    files = _quoted(missing["source"].unique().sort())
    msg = (
        f"per-million prices in {prices.source} need output token counts, but "
        f"{files} log neither output_tokens nor a response text for "
        f"{_plural(missing.height, 'answer')} of {_quoted(models, limit=None)}. Add an "
        "output_tokens column to the logs, or give these models a per_call_usd "
        "price."
    )
    raise PriceError(msg)


def _require_costs(frame: pl.DataFrame, prices: Prices | None) -> None:
    missing = frame.filter(pl.col("cost_usd").is_null())
    if missing.height == 0:
        return
    models = _quoted(missing["model"].unique().sort(), limit=None)
    files = _quoted(missing["source"].unique().sort())
    answers = _plural(missing.height, "answer")
    if prices is None:
        msg = (
            f"{files} log no cost for {answers} of {models}. Pass a price file "
            "with a price for each of these models: read_logs(..., "
            "prices='prices.json'), or --prices prices.json on the command line. "
            "training.prices describes the format."
        )
    else:
        msg = (
            f"price file {prices.source} has no price for {models}, and {files} "
            f"log no cost for their {answers}; add these models to the price file"
        )
    raise PriceError(msg)


def _check_costs(frame: pl.DataFrame) -> None:
    cost = pl.col("cost_usd")
    invalid = frame.filter(cost.is_nan() | cost.is_infinite() | (cost < 0))
    if invalid.height == 0:
        return
    groups = (
        invalid.group_by("source", "model", maintain_order=True)
        .agg(
            pl.len().alias("count"),
            pl.col("_row").first().alias("row"),
            pl.col("cost_usd").first().alias("value"),
        )
        .rows(named=True)
    )
    details = "; ".join(
        f"{group['source']}, model {group['model']!r}: "
        f"{_plural(group['count'], 'answer')}, for example cost {group['value']} "
        f"in data row {group['row']}"
        for group in groups[:3]
    )
    more = f" (and {len(groups) - 3} more files or models)" if len(groups) > 3 else ""
    msg = (
        f"found {_plural(invalid.height, 'answer')} with a NaN, infinite or "
        f"negative cost: {details}{more}. Costs must be finite USD amounts >= 0. "
        "Fix them in the logs, or pass a price file that prices these models."
    )
    raise LogError(msg)


def _text_hashes(texts: pl.Series, length: int) -> pl.Series:
    """Return the first ``length`` hex digits of the SHA-1 of each UTF-8 text."""
    hashes = [
        hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]
        for text in texts.to_list()
    ]
    return pl.Series(hashes, dtype=pl.String)


def _assign_prompt_ids(frame: pl.DataFrame, changes: "_ChangeLog") -> pl.DataFrame:
    """Give every prompt text one id that no other text has."""
    logged_ids = (
        frame.filter(pl.col("prompt_id").is_not_null())
        .group_by("prompt")
        .agg(pl.col("prompt_id").sort_by("_order").first().alias("_id"))
    )
    frame = frame.join(logged_ids, on="prompt", how="left", maintain_order="left")
    conflict = pl.col("prompt_id").is_not_null() & (
        pl.col("prompt_id") != pl.col("_id")
    )
    changes.add_rows("prompt_id_conflict", frame.filter(conflict))

    unlogged = frame.filter(pl.col("_id").is_null())["prompt"].unique()
    hashed = pl.DataFrame(
        {"prompt": unlogged, "_hash": _text_hashes(unlogged, 16)},
        schema={"prompt": pl.String, "_hash": pl.String},
    )
    frame = frame.join(hashed, on="prompt", how="left", maintain_order="left")
    frame = frame.with_columns(pl.coalesce("_id", "_hash").alias("prompt_id")).drop(
        "_id", "_hash"
    )
    return _split_reused_ids(frame, changes)


def _split_reused_ids(frame: pl.DataFrame, changes: "_ChangeLog") -> pl.DataFrame:
    """Suffix ids that name several texts, except for the first text."""
    first_text = pl.col("prompt").sort_by("_order").first().over("prompt_id")
    reused = frame.filter(pl.col("prompt") != first_text)
    if reused.height == 0:
        return frame
    changes.add_rows("prompt_id_reused", reused)

    texts = reused["prompt"].unique()
    suffixes = pl.DataFrame(
        {"prompt": texts, "_suffix": _text_hashes(texts, 8)},
        schema={"prompt": pl.String, "_suffix": pl.String},
    )
    frame = frame.join(suffixes, on="prompt", how="left", maintain_order="left")
    new_id = (
        pl.when(pl.col("prompt") != first_text)
        .then(pl.concat_str("prompt_id", pl.lit("#"), "_suffix"))
        .otherwise(pl.col("prompt_id"))
    )
    return frame.with_columns(new_id.alias("prompt_id")).drop("_suffix")


def _unify_tasks(frame: pl.DataFrame, changes: "_ChangeLog") -> pl.DataFrame:
    first_task = pl.col("task").sort_by("_order").drop_nulls().first().over("prompt_id")
    frame = frame.with_columns(first_task.alias("_task"))
    changed = pl.col("_task").is_not_null() & pl.col("task").ne_missing(pl.col("_task"))
    changes.add_rows("task_conflict", frame.filter(changed))
    return frame.with_columns(pl.col("_task").alias("task")).drop("_task")


def _merge_duplicates(frame: pl.DataFrame, changes: "_ChangeLog") -> pl.DataFrame:
    rank = pl.col("_order").rank("ordinal").over("prompt_id", "model")
    repeated = frame.filter(rank > 1)
    if repeated.height == 0:
        return frame
    changes.add_rows("duplicate_merged", repeated)

    by_order = frame.sort("_order")
    return by_order.group_by("prompt_id", "model", maintain_order=True).agg(
        pl.col("prompt").first(),
        pl.col("score").mean(),
        pl.col("cost_usd").mean(),
        pl.col("task").first(),
        pl.col("input_tokens").mean().round().cast(pl.Int64),
        pl.col("output_tokens").mean().round().cast(pl.Int64),
        pl.col("response_chars").first(),
        pl.col("source").first(),
        pl.col("_row").first(),
        pl.col("_order").first(),
    )


def _check_models(
    frame: pl.DataFrame, models_seen: set[str], changes: "_ChangeLog"
) -> tuple[str, ...]:
    models = tuple(sorted(frame["model"].unique()))
    for model in sorted(models_seen - set(models)):
        changes.add("model_empty", model, 1)
    if len(models) < 2:
        empty = sorted(models_seen - set(models))
        left_out = f"; models with no answers left: {_quoted(empty)}" if empty else ""
        msg = (
            f"routing needs at least two models; found only {_quoted(models)}"
            f"{left_out}. Add logs of another model."
        )
        raise LogError(msg)
    return models


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _quoted(names: Iterable[str], limit: int | None = 5) -> str:
    """Quote and join names, the first ``limit`` of them, then count the rest."""
    names = list(names)
    listed = ", ".join(repr(name) for name in names[:limit])
    if limit is not None and len(names) > limit:
        return f"{listed} and {len(names) - limit} more"
    return listed


class _ChangeLog:
    """Counts of dropped and changed answers, by reason and by file or model."""

    def __init__(self):
        self._counts: dict[str, dict[str, int]] = {}

    def add(self, reason: str, where: str, count: int) -> None:
        if count:
            by_place = self._counts.setdefault(reason, {})
            by_place[where] = by_place.get(where, 0) + count

    def add_rows(self, reason: str, rows: pl.DataFrame) -> None:
        for source, count in rows.group_by("source").len().iter_rows():
            self.add(reason, source, count)

    def totals(self) -> dict[str, int]:
        return {reason: sum(places.values()) for reason, places in self._counts.items()}

    def describe(self) -> str:
        if not self._counts:
            return "reading"
        return "; ".join(self._message(reason) for reason in self._counts)

    def warn(self) -> None:
        for reason in self._counts:
            # stacklevel 3 points at the caller of read_logs.
            warnings.warn(self._message(reason), LogDataWarning, stacklevel=3)

    def _message(self, reason: str) -> str:
        places = self._counts[reason]
        count = sum(places.values())
        if reason == "model_empty":
            where = _quoted(sorted(places), limit=None)
        else:
            ordered = sorted(places.items())
            where = ", ".join(f"{n} in {place}" for place, n in ordered[:5])
            if len(ordered) > 5:
                rest = sum(n for _, n in ordered[5:])
                where += f" and {rest} in {len(ordered) - 5} more files"
        message = _CHANGE_MESSAGES[reason].format(
            answers=_plural(count, "answer"),
            rows=_plural(count, "row"),
            models=_plural(count, "model"),
        )
        return f"{message}: {where}"
