"""Train on logs larger than memory, on one machine or with Ray.

:func:`train_large` gives the same bundle as :func:`training.train` on the same
logs and seed, by other means:

- Long-format Parquet, CSV and JSON Lines files are scanned with polars' lazy
  engine and aggregated with streaming collection, so the answers are never all
  in memory. Only per-prompt and per-answer numbers, and the distinct prompt
  texts once while their ids are assigned, are collected. JSON Lines files are
  first parsed with the eager reader's rules, 50,000 records at a time, into
  Parquet parts in the scratch folder. Other files (RouterBench and RouteLLM
  wide files, JSON arrays, preference logs, Parquet prompts given as lists of
  turns) are small and go through :func:`training.collect.read_logs`.
- Distinct prompts are featurized in chunks written to a work directory
  (:mod:`training.chunks`), in this process or on Ray workers. A killed run
  resumes from the chunks already written, and new logs reuse them.
- The head is fitted on the training rows of the memory-mapped feature matrix,
  or on a seeded sample of ``max_fit_prompts`` of them. Calibration, export and
  MLflow tracking are those of :func:`training.pipeline.run`.

The lazy reader applies these cleaning rules of :mod:`training.collect`: blank
prompts and answers without a score are dropped and counted; invalid scores,
missing model names and missing, NaN, infinite or negative costs raise
:class:`~router.errors.LogError` or :class:`~router.errors.PriceError`; answers of
one model to one prompt text are merged by their mean score and cost; prompt ids
and tasks follow the first logged one. It does not count the answers whose
``prompt_id`` or ``task`` it changed, and it does not read price files.
"""

import fcntl
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from router.errors import LogError
from training import chunks, collect, embed, label, pipeline, split
from training.pipeline import TrainConfig, TrainResult

logger = logging.getLogger(__name__)

# Suffixes that polars scans lazily; .json arrays have no lazy reader.
_LAZY_SUFFIXES = (".parquet", ".csv", ".jsonl", ".ndjson")
# Rows read from each file to detect its format from its columns and dtypes.
_SAMPLE_ROWS = 100
# Records of a JSON Lines log parsed into one Parquet part.
_JSON_LINES_BATCH = 50_000
_ANSWER_COLUMNS = ("prompt_id", "prompt", "model", "score", "cost_usd", "task",
                   "input_tokens", "output_tokens", "source", "_order")


@dataclass(frozen=True)
class Scan:
    """Labels inputs read from logs, without the answers' texts.

    Attributes
    ----------
    table : training.label.Table
        Scores and costs per prompt and model. Its ``prompts`` are the hex
        SHA-256 digests of the texts, which split them the same way.
    keys : ndarray of S32
        The SHA-256 digest of each prompt's text, in table order.
    prompts_path : Path
        Parquet file of the prompts in table order: ``row``, ``prompt_id`` and
        ``prompt``.
    logs : training.collect.Logs
        The files, formats and counts of changes. Its ``frame`` has one row per
        model with the mean token counts, which is all the manifest reads.
    data : dict
        Manifest ``data`` entries computed here: ``fingerprint`` (equal to
        :func:`training.pipeline.data_fingerprint` of the eager frame) and
        ``n_answers``.
    """

    table: label.Table
    keys: np.ndarray
    prompts_path: Path
    logs: collect.Logs
    data: dict


def train_large(logs, out, *, work_dir, ray_address: str | None = None,
                chunk_size: int = 20_000, max_fit_prompts: int | None = None,
                **options) -> TrainResult:
    """Train a router on logs too large for memory, writing its bundle to ``out``.

    Parameters
    ----------
    logs : path or list of paths
        Log files or directories, as for :func:`training.train`.
    out : path
        The bundle directory to write.
    work_dir : path
        Where feature chunks and scan files are kept between runs. Reusing it
        resumes a killed run and reuses the features of prompts seen before.
        One run at a time may use it; a second one waits for the first.
    ray_address : str, optional
        Featurize on Ray: ``"local"`` starts Ray in this process, any other
        value is passed to ``ray.init(address=...)``. None featurizes in this
        process.
    chunk_size : int, default 20000
        Prompts per feature chunk.
    max_fit_prompts : int, optional
        Fit on a sample of this many training prompts, drawn with ``seed``.
        None fits on every training prompt. Calibration and the report always
        use the whole validation split.
    **options
        Any field of :class:`training.pipeline.TrainConfig` except ``prices``,
        which only wide and JSON-array logs accept.

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> from training.scale import train_large
    >>> result = train_large("logs/", "runs/big", work_dir="work/")  # doctest: +SKIP
    """
    if chunk_size < 1:
        msg = f"chunk_size must be a positive number of prompts; got {chunk_size!r}"
        raise ValueError(msg)
    if max_fit_prompts is not None and max_fit_prompts < 2:
        msg = f"max_fit_prompts must be at least 2 or None; got {max_fit_prompts!r}"
        raise ValueError(msg)
    paths = (logs,) if isinstance(logs, (str, Path)) else tuple(logs)
    config = TrainConfig(logs=tuple(str(p) for p in paths), out=str(out), **options)
    if work_dir is None or not str(work_dir).strip():
        msg = f"work_dir must name a folder; got {work_dir!r}"
        raise ValueError(msg)
    work_dir = Path(work_dir)
    if work_dir.exists() and not work_dir.is_dir():
        msg = (
            f"work_dir {work_dir} is a file, not a folder; choose a folder for the "
            "feature chunks"
        )
        raise ValueError(msg)
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        msg = (
            f"cannot create work_dir {work_dir}: {error.strerror}; choose a folder "
            "that can be written"
        )
        raise ValueError(msg) from None
    with _locked(work_dir):
        return _run(config, work_dir, ray_address, chunk_size, max_fit_prompts)


@contextmanager
def _locked(work_dir: Path):
    with open(work_dir / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.warning("waiting for another run that uses %s to finish "
                           "(it holds %s)", work_dir, lock.name)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(config, work_dir, ray_address, chunk_size, max_fit_prompts) -> TrainResult:
    timings = {}
    clock = [time.perf_counter()]

    def lap(step):
        now = time.perf_counter()
        timings[step] = round(now - clock[0], 3)
        clock[0] = now

    # Read and label.
    scan = scan_logs(list(config.logs), work_dir / "scan", format=config.format,
                     prices=config.prices)
    table = scan.table
    labels = label.cheapest_correct(table, threshold=config.threshold,
                                    unanswered=config.unanswered)
    train_rows, val_rows = split.train_validation_split(
        table.prompts, validation=config.validation, seed=config.seed)
    fit_rows = _fit_sample(train_rows, max_fit_prompts, config.seed)
    lap("read_and_label")

    # Featurize the prompts that no chunk stores yet, then map the matrix.
    featurizer = embed.make_featurizer(config.featurizer, embedder=config.embedder,
                                       cache_dir=config.cache_dir)
    lap("featurizer_setup")
    if ray_address and featurizer.kind != "static":
        logger.warning("Ray runs the static featurizer only; featurizing with %s "
                       "in this process", featurizer.kind)
        ray_address = None
    X, n_featurized = featurize(scan, featurizer, work_dir, chunk_size=chunk_size,
                                ray_address=ray_address)
    lap("featurize")
    logger.info("%d prompts, %d models: %d to fit, %d to validate, %d featurized now",
                len(table.prompts), len(table.models), len(fit_rows), len(val_rows),
                n_featurized)

    val_texts = _texts_at(scan.prompts_path, val_rows)
    data = dict(scan.data, n_featurized=n_featurized, n_train_available=len(train_rows),
                featurized_on="ray" if ray_address else "local", chunk_size=chunk_size,
                max_fit_prompts=max_fit_prompts)
    return pipeline._fit_and_write(config, scan.logs, table, labels, featurizer, X,
                                   fit_rows, val_rows, timings, lap,
                                   val_prompts=val_texts, data=data)


def _fit_sample(train_rows: np.ndarray, max_fit_prompts: int | None,
                seed: int) -> np.ndarray:
    if max_fit_prompts is None or len(train_rows) <= max_fit_prompts:
        return train_rows
    sample = np.random.default_rng(seed).choice(train_rows, max_fit_prompts,
                                                replace=False)
    logger.info("fitting on a seeded sample of %d of %d training prompts",
                max_fit_prompts, len(train_rows))
    return np.sort(sample)


def featurize(scan: Scan, featurizer, work_dir: Path, *, chunk_size: int = 20_000,
              ray_address: str | None = None) -> tuple[np.ndarray, int]:
    """Featurize the prompts of ``scan`` in chunks; return the matrix and a count.

    Returns
    -------
    X : ndarray of shape (n_prompts, dim)
        float32 features in table order, memory-mapped read-only.
    n_featurized : int
        Prompts featurized by this call; the others came from stored chunks.
    """
    dim = int(featurizer.spec["dim"])
    store = chunks.ChunkStore(work_dir, chunks.featurizer_key(featurizer), dim)
    missing = store.missing(scan.keys)
    logger.info("features: %d prompts stored in %d chunks, %d to featurize",
                len(scan.keys) - len(missing), store.n_chunks, len(missing))
    if len(missing):
        pending = scan.prompts_path.with_name("pending.parquet")
        (
            pl.scan_parquet(scan.prompts_path)
            .filter(pl.col("row").is_in(missing.tolist()))
            .select("prompt")
            .sink_parquet(pending, row_group_size=chunk_size)
        )
        if ray_address:
            chunks.featurize_with_ray(store, pending, featurizer, chunk_size,
                                      ray_address)
        else:
            chunks.featurize_pending(store, pending, featurizer, chunk_size)
        pending.unlink()
    return store.assemble(scan.keys), store.n_featurized


def _texts_at(prompts_path: Path, rows: np.ndarray) -> list[str]:
    return (
        pl.scan_parquet(prompts_path)
        .filter(pl.col("row").is_in(rows.tolist()))
        .sort("row")
        .collect()["prompt"]
        .to_list()
    )


# Reading


def scan_logs(paths, scratch: Path, *, format: str = "auto", prices=None) -> Scan:
    """Read logs into a :class:`Scan`, lazily where the files allow it.

    Parameters
    ----------
    paths : path or list of paths
        Log files and folders, as for :func:`training.collect.read_logs`.
    scratch : path
        Folder for the scan's Parquet files; its old ones are replaced.
    format : str
        As for :func:`training.collect.read_logs`.
    prices : path, optional
        A price file. Only logs read eagerly can be priced.

    Raises
    ------
    LogError, PriceError
        As :func:`training.collect.read_logs`.
    """
    collect._check_format(format)
    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    listed = collect._list_files(collect._as_paths(paths))
    try:
        return _scan(listed, scratch, format, prices)
    except pl.exceptions.ComputeError as error:
        # The streaming engine does not say which file it failed to parse.
        raise _unreadable(error, listed) from None


def _scan(listed, scratch: Path, format: str, prices) -> Scan:
    changes = collect._ChangeLog()
    parts = _convert_json_lines(listed, format, scratch / "jsonl")
    lazy_files, eager_files = _plan_files(listed, format, parts)
    if lazy_files and prices is not None:
        msg = (
            "the chunked path reads costs from long-format logs and cannot apply a "
            f"price file to {len(lazy_files)} of them, such as {lazy_files[0]}; add "
            "a cost_usd column to the logs, or train without --work-dir"
        )
        raise LogError(msg)

    answers, models_seen = [], set()
    # Files are numbered in listing order, whichever reader reads them, so the
    # first logged id and task of a prompt come from the first file listed.
    position = {str(path): number for number, (path, _) in enumerate(listed)}
    for path in lazy_files:
        answers.append(_scan_long(path, position[str(path)], parts))
    eager = None
    if eager_files:
        eager = collect.read_logs(eager_files, format=format, prices=prices)
        models_seen.update(eager.models)
        answers.append(_eager_answers(eager, position))
    answers = pl.concat(answers, how="vertical")
    models_seen.update(_check_answers(answers, changes, parts))

    kept = answers.filter(
        ~collect._is_blank("prompt") & pl.col("score").is_not_null()
    )
    prompts_path = _write_prompts(kept, scratch)
    merged = _merge_answers(kept, prompts_path, changes)
    if merged.height == 0:
        msg = f"no answers left after {changes.describe()}"
        raise LogError(msg)
    models = collect._check_models(merged, models_seen, changes)
    changes.warn()

    table, keys = _build_table(merged, prompts_path)
    totals = changes.totals()
    for reason, count in (eager.changes if eager else {}).items():
        totals[reason] = totals.get(reason, 0) + count
    read = [(str(p), "long") for p in lazy_files]
    read += list(zip(eager.files, eager.format)) if eager else []
    read.sort(key=lambda pair: position[pair[0]])
    files, formats = [file for file, _ in read], [kind for _, kind in read]
    logs = collect.Logs(_token_means(merged), tuple(files), tuple(formats), models,
                        totals)
    data = {"fingerprint": _fingerprint(merged, table, prompts_path),
            "n_answers": merged.height}
    logger.info("kept %d answers to %d prompts from %d models in %d files",
                merged.height, len(table.prompt_ids), len(models), len(files))
    return Scan(table, keys, prompts_path, logs, data)


def _unreadable(error: Exception, listed: list[tuple[Path, bool]]) -> LogError:
    """Return a :class:`LogError` naming the CSV file that polars cannot parse."""
    for path, _ in listed:
        if path.suffix.lower() != ".csv":
            continue
        try:
            _scan_file(path, {}).select(pl.all().null_count()).collect(
                engine="streaming")
        except pl.exceptions.ComputeError as file_error:
            if "utf-8" in str(file_error).lower():
                return _utf8_error(path)
            return LogError(f"cannot parse {path} as CSV: {file_error}")
    return LogError(f"cannot read the logs: {error}")


def _utf8_error(path: Path, block: int = 2**20) -> LogError:
    """Return the eager reader's error for ``path``, reading it in blocks."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    with open(path, "rb") as f:
        while data := f.read(block):
            try:
                decoder.decode(data)
            except UnicodeDecodeError as error:
                # The decoder keeps up to 3 bytes of the previous block.
                carried = len(error.object) - len(data)
                at = error.start - carried
                line = lines + data.count(b"\n", 0, max(at, 0))
                return collect._not_utf8(path, error.object[error.start],
                                         offset + at, line)
            offset += len(data)
            lines += data.count(b"\n")
    return LogError(f"{path} is not valid UTF-8; re-encode the file as UTF-8")


def _plan_files(listed: list[tuple[Path, bool]], format: str,
                parts: dict) -> tuple[list[Path], list[Path]]:
    """Split the log files into those scanned lazily and those read eagerly."""
    lazy, eager = [], []
    for path, named in listed:
        suffix = path.suffix.lower()
        if format not in ("auto", "long") or suffix not in _LAZY_SUFFIXES:
            eager.append(path)
            continue
        if path.stat().st_size == 0:
            msg = f"log file {path} is empty (0 bytes); fill it or remove it"
            raise LogError(msg)
        sample = _scan_file(path, parts).head(_SAMPLE_ROWS).collect()
        if sample.height == 0:
            raise collect._no_rows(path, sample.columns)
        kind = format if format != "auto" else collect._detect_format(sample)
        if kind == "long" and sample.schema.get("prompt") == pl.String:
            collect._require_columns(sample, ("prompt", "model", "score"), path,
                                     "long-format")
            lazy.append(path)
        elif kind is not None or named:
            eager.append(path)
        else:
            logger.info("skipping %s: its columns %s match no log format", path,
                        sample.columns)
    return lazy, eager


def _convert_json_lines(listed: list[tuple[Path, bool]], format: str,
                        folder: Path) -> dict[Path, list[Path]]:
    """Write each JSON Lines log as Parquet parts of text columns; return them.

    polars infers a JSON Lines file's columns and types from its first rows, so
    a column that first appears later, or a score that turns from 0 into 0.5,
    would be lost or fail. Records are parsed here with the eager reader's
    rules instead, :data:`_JSON_LINES_BATCH` at a time. Prompts given as lists
    of turns become their text, and invalid JSON, UTF-8 or prompts raise
    :class:`LogError` naming the line or data row.
    """
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    parts: dict[Path, list[Path]] = {}
    if format not in ("auto", "long"):
        return parts
    for number, (path, _) in enumerate(listed):
        if path.suffix.lower() not in (".jsonl", ".ndjson") or not path.stat().st_size:
            continue
        target = folder / str(number)
        target.mkdir(parents=True)
        parts[path] = []
        records, first_row = [], 1

        def flush():
            part = target / f"part-{len(parts[path]):05d}.parquet"
            collect._records_to_frame(records, path, first_row).write_parquet(part)
            parts[path].append(part)

        with open(path, "rb") as lines:
            offset = 0
            for line_number, raw in enumerate(lines, start=1):
                # Without its "\n", as the eager reader splits lines, so that
                # JSON errors give the same column.
                line = _decode_line(raw.removesuffix(b"\n"), path, line_number,
                                    offset)
                offset += len(raw)
                if not line.strip():
                    continue
                records.append(collect._json_line(line, path, line_number))
                if len(records) == _JSON_LINES_BATCH:
                    flush()
                    first_row += len(records)
                    records = []
        if records:
            flush()
        if not parts[path]:
            raise collect._no_rows(path, [])
    return parts


def _decode_line(raw: bytes, path: Path, line_number: int, offset: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise collect._not_utf8(path, raw[error.start], offset + error.start,
                                line_number) from None


def _scan_file(path: Path, parts: dict) -> pl.LazyFrame:
    if path in parts:
        # Text columns, as for CSV. Parts lack the columns their records lack.
        return pl.concat([pl.scan_parquet(part) for part in parts[path]],
                         how="diagonal")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            # Text columns, parsed below, as collect.py reads CSV.
            return pl.scan_csv(path, infer_schema=False, encoding="utf8")
        if suffix == ".parquet":
            return pl.scan_parquet(path)
        return pl.scan_ndjson(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        msg = f"cannot read {path}: {error}"
        raise LogError(msg) from None


def _scan_long(path: Path, number: int, parts: dict) -> pl.LazyFrame:
    """Scan one long-format file into the answer columns, values parsed."""
    frame = _scan_file(path, parts)
    schema = frame.collect_schema()

    def text(column):
        if column not in schema:
            return pl.lit(None, dtype=pl.String).alias(column)
        value = pl.col(column).cast(pl.String)
        return pl.when(value.str.strip_chars() != "").then(value).alias(column)

    def number_or_null(column, *, true_false=False):
        if column not in schema:
            return pl.lit(None, dtype=pl.Float64).alias(column)
        parsed = _parse_number(column, schema[column], true_false)
        # A NaN score is a missing one, but a NaN cost is invalid, as in collect.py.
        return (parsed.fill_nan(None) if true_false else parsed).alias(column)

    row = pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    return frame.select(
        text("prompt_id"),
        pl.col("prompt").cast(pl.String).alias("prompt"),
        pl.col("model").cast(pl.String).alias("model"),
        number_or_null("score", true_false=True),
        _invalid_number("score", schema, true_false=True).alias("_bad_score"),
        number_or_null("cost_usd"),
        _invalid_number("cost_usd", schema).alias("_bad_cost"),
        text("task"),
        number_or_null("input_tokens"),
        number_or_null("output_tokens"),
        pl.lit(str(path)).alias("source"),
        row.alias("_row"),
        # Reading order across files: file number, then row.
        (pl.lit(number, dtype=pl.Int64) * 2**40 + row).alias("_order"),
    )


def _parse_number(column: str, dtype, true_false: bool) -> pl.Expr:
    """Parse a column into Float64: blanks as null, True/False as 1/0."""
    if dtype.is_numeric() or dtype in (pl.Boolean, pl.Null):
        return pl.col(column).cast(pl.Float64)
    text = pl.col(column).cast(pl.String).str.strip_chars()
    if true_false:
        lower = text.str.to_lowercase()
        text = (
            pl.when(lower == "true").then(pl.lit("1"))
            .when(lower == "false").then(pl.lit("0"))
            .otherwise(text)
        )
    return text.cast(pl.Float64, strict=False)


def _invalid_number(column: str, schema, *, true_false: bool = False) -> pl.Expr:
    """Flag values that are not numbers, or scores outside [0, 1]."""
    if column not in schema:
        return pl.lit(False)
    parsed = _parse_number(column, schema[column], true_false)
    text = pl.col(column).cast(pl.String).str.strip_chars()
    invalid = text.is_not_null() & (text != "") & parsed.is_null()
    if true_false:
        # polars orders NaN above every number, so NaN is taken out first.
        score = parsed.fill_nan(None)
        invalid = invalid | (score < 0) | (score > 1)
    return invalid.fill_null(False)


def _eager_answers(logs: collect.Logs, position: dict[str, int]) -> pl.LazyFrame:
    """Turn eagerly read logs into the answer columns of the lazy scan.

    ``position`` gives each file's number in the listing. The eager reader has
    already settled ids and tasks within its files, and its frame is sorted by
    prompt id, so rows of one file are ordered that way.
    """
    row = pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("source")
    number = pl.col("source").replace_strict(position, return_dtype=pl.Int64)
    return logs.frame.lazy().select(
        "prompt_id", "prompt", "model", "score",
        pl.lit(False).alias("_bad_score"),
        "cost_usd",
        pl.lit(False).alias("_bad_cost"),
        "task",
        pl.col("input_tokens").cast(pl.Float64),
        pl.col("output_tokens").cast(pl.Float64),
        "source",
        row.alias("_row"),
        (number * 2**40 + row).alias("_order"),
    )


def _check_answers(answers: pl.LazyFrame, changes, parts: dict) -> set[str]:
    """Raise on invalid values, count the dropped rows; return the models seen."""
    blank_prompt = collect._is_blank("prompt")
    missing_score = ~blank_prompt & pl.col("score").is_null() & ~pl.col("_bad_score")
    blank_model = _blank_model()
    cost = pl.col("cost_usd")
    kept = ~blank_prompt & pl.col("score").is_not_null()

    # One streaming pass counts every problem per file.
    per_source = (
        answers.group_by("source")
        .agg(
            blank_prompt.sum().alias("prompt_blank"),
            missing_score.sum().alias("score_missing"),
            pl.col("_bad_score").sum().alias("bad_score"),
            pl.col("_bad_cost").sum().alias("bad_cost"),
            blank_model.sum().alias("blank_model"),
            (kept & cost.is_null() & ~pl.col("_bad_cost")).sum().alias("no_cost"),
            (kept & _invalid_cost(cost)).sum().alias("invalid_cost"),
            pl.col("model").unique().alias("models"),
        )
        .sort("source")
        .collect(engine="streaming")
    )

    # Invalid values raise, in the order collect.py checks them.
    for source, *counts in per_source.select(
        "source", "bad_score", "bad_cost", "blank_model"
    ).iter_rows():
        _raise_for_values(answers, source, *counts, parts=parts)
    if per_source["no_cost"].sum():
        collect._require_costs(_examples(answers, kept & cost.is_null()), None)
    if per_source["invalid_cost"].sum():
        collect._check_costs(_examples(answers, kept & _invalid_cost(cost)))

    for source, blank, missing in per_source.select(
        "source", "prompt_blank", "score_missing"
    ).iter_rows():
        changes.add("prompt_blank", source, blank)
        changes.add("score_missing", source, missing)
    models = per_source["models"].explode().drop_nulls()
    return set(models.to_list())


def _invalid_cost(cost: pl.Expr) -> pl.Expr:
    return (cost.is_nan() | cost.is_infinite() | (cost < 0)).fill_null(False)


def _examples(answers: pl.LazyFrame, condition: pl.Expr) -> pl.DataFrame:
    # Every offending row is collected, since the error messages count them per
    # file and model; they are few in logs worth training on.
    return answers.filter(condition).collect(engine="streaming")


def _raise_for_values(answers, source, bad_score, bad_cost, blank_model, *,
                      parts: dict) -> None:
    for count, column, flag, expected in (
        (bad_score, "score", pl.col("_bad_score"),
         "scores in [0, 1] (1/0, True/False or a grade)"),
        (bad_cost, "cost_usd", pl.col("_bad_cost"), "numbers"),
    ):
        if count:
            row = (
                answers.filter((pl.col("source") == source) & flag)
                .select("_row")
                .head(1)
                .collect()
                .item()
            )
            # The parsed value is null, so the example is read again as logged.
            raw = _scan_file(Path(source), parts).slice(row - 1, 1).collect()
            raw = raw[column][0]
            if column == "score" and not _is_number(raw):
                expected = "numbers or True/False"
            msg = (
                f"column {column!r} of {source} must contain {expected}, but has "
                f"{collect._plural(count, 'invalid value')}, for example {raw!r} "
                f"in data row {row}; fix or remove these values"
            )
            raise LogError(msg)
    if blank_model:
        row = (
            answers.filter((pl.col("source") == source) & _blank_model())
            .select("_row")
            .head(1)
            .collect()
            .item()
        )
        msg = (
            f"{source} has {collect._plural(blank_model, 'answer')} with no model "
            f"name in column 'model', for example data row {row}; fill in the model "
            "of every answer"
        )
        raise LogError(msg)


def _blank_model() -> pl.Expr:
    return pl.col("model").is_null() | (pl.col("model").str.strip_chars() == "")


def _is_number(value) -> bool:
    """Return whether a logged score reads as a number or True/False."""
    if value is None or isinstance(value, (bool, int, float)):
        return True
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _write_prompts(kept: pl.LazyFrame, scratch: Path) -> Path:
    """Give each distinct text its prompt id and task, and write them in order."""
    pairs = (
        kept.group_by("prompt", "prompt_id")
        .agg(
            pl.col("_order").min().alias("_order"),
            pl.col("source").sort_by("_order").first().alias("source"),
            pl.col("task").sort_by("_order").drop_nulls().first().alias("task"),
            pl.col("_order").filter(pl.col("task").is_not_null()).min()
            .alias("_task_order"),
        )
        .collect(engine="streaming")
    )
    # The eager reader's id rules, applied to one row per (text, logged id). Its
    # counts would be of such rows and not of answers, so they are discarded.
    pairs = collect._assign_prompt_ids(pairs, collect._ChangeLog())
    prompts = (
        pairs.group_by("prompt")
        .agg(
            pl.col("prompt_id").first().alias("prompt_id"),
            pl.col("task")
            .sort_by("_task_order", nulls_last=True)
            .first()
            .alias("task"),
        )
        .sort("prompt_id")
        .with_row_index("row")
        .select("row", "prompt_id", "task", "prompt")
    )
    path = scratch / "prompts.parquet"
    temporary = path.with_name(f".prompts.{os.getpid()}.parquet")
    prompts.write_parquet(temporary)
    os.replace(temporary, path)
    return path


def _merge_answers(kept: pl.LazyFrame, prompts_path: Path, changes) -> pl.DataFrame:
    """Merge the answers of one model to one prompt; one row per (row, model)."""
    merged = (
        kept.join(pl.scan_parquet(prompts_path).select("prompt", "row"), on="prompt")
        .group_by("row", "model")
        .agg(
            # Means over the answers in reading order, because the streaming
            # engine gathers a group in any order and a sum of three or more
            # floats depends on the order.
            pl.col("score").sort_by("_order").mean().alias("score"),
            pl.col("cost_usd").sort_by("_order").mean().alias("cost_usd"),
            pl.col("input_tokens").sort_by("_order").mean().round()
            .alias("input_tokens"),
            pl.col("output_tokens").sort_by("_order").mean().round()
            .alias("output_tokens"),
            pl.col("source").sort_by("_order").first().alias("source"),
            pl.len().alias("_answers"),
        )
        .collect(engine="streaming")
    )
    # Merged rows are counted against the file of each group's first answer.
    repeated = merged.filter(pl.col("_answers") > 1)
    for source, count in (
        repeated.group_by("source").agg((pl.col("_answers") - 1).sum()).iter_rows()
    ):
        changes.add("duplicate_merged", source, count)
    return merged.drop("_answers").sort("row", "model")


def _build_table(merged: pl.DataFrame, prompts_path: Path):
    prompts = pl.read_parquet(prompts_path, columns=["row", "prompt_id", "task"])
    per_model = label.mean_costs(merged)
    models = tuple(per_model["model"].to_list())
    col_of = {model: j for j, model in enumerate(models)}
    rows = merged["row"].to_numpy().astype(np.intp)
    cols = np.array([col_of[m] for m in merged["model"].to_list()], dtype=np.intp)
    scores = np.full((prompts.height, len(models)), np.nan)
    costs = np.full((prompts.height, len(models)), np.nan)
    scores[rows, cols] = merged["score"].to_numpy()
    costs[rows, cols] = merged["cost_usd"].to_numpy()

    keys = _prompt_keys(prompts_path, prompts.height)
    table = label.Table(
        prompt_ids=prompts["prompt_id"].to_list(),
        prompts=[key.hex() for key in keys.tolist()],
        tasks=prompts["task"].to_list(),
        models=models,
        scores=scores,
        costs=costs,
        model_costs=per_model["mean_cost"].to_numpy().astype(np.float64),
    )
    return table, keys


def _prompt_keys(prompts_path: Path, n_prompts: int, step: int = 20_000) -> np.ndarray:
    keys = np.empty(n_prompts, dtype="S32")
    start = 0
    for texts in chunks.read_texts(prompts_path, step):
        keys[start:start + len(texts)] = chunks.text_keys(texts)
        start += len(texts)
    return keys


def _token_means(merged: pl.DataFrame) -> pl.DataFrame:
    """Return one row per model with its mean token counts, in the frame schema.

    The manifest's fingerprint and answer count are replaced by those of
    :class:`Scan`, so the other columns only need to exist.
    """
    means = merged.group_by("model").agg(
        pl.col("input_tokens").mean().alias("input_tokens"),
        pl.col("output_tokens").mean().alias("output_tokens"),
    )
    return means.select(
        pl.lit(None, dtype=pl.String).alias("prompt_id"),
        pl.lit("", dtype=pl.String).alias("prompt"),
        "model",
        pl.lit(None, dtype=pl.Float64).alias("score"),
        pl.lit(None, dtype=pl.Float64).alias("cost_usd"),
        "input_tokens",
        "output_tokens",
    )


def _fingerprint(merged: pl.DataFrame, table: label.Table, prompts_path: Path) -> str:
    """Return :func:`training.pipeline.data_fingerprint` of the same answers.

    The rows and the sorted texts are hashed in slices, so neither the CSV text
    nor the joined texts are built whole.
    """
    import hashlib

    ids = pl.Series("prompt_id", table.prompt_ids, dtype=pl.String)
    ordered = (
        merged.select(
            ids.gather(merged["row"]).alias("prompt_id"),
            "model",
            pl.col("score").cast(pl.Float64),
            pl.col("cost_usd").cast(pl.Float64),
        )
        .sort("prompt_id", "model")
    )
    digest = hashlib.sha256()
    step = 200_000
    for start in range(0, max(ordered.height, 1), step):
        part = ordered.slice(start, step)
        digest.update(part.write_csv(include_header=start == 0)
                      .encode("utf-8", "surrogatepass"))
    digest.update(b"\0")
    texts = pl.scan_parquet(prompts_path).select("prompt").sort("prompt").collect()
    for start in range(0, texts.height, 20_000):
        part = texts["prompt"].slice(start, 20_000).to_list()
        prefix = "\n" if start else ""
        digest.update((prefix + "\n".join(part)).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
