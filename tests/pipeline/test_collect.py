"""Tests of reading logged answers with training.collect.read_logs."""

import hashlib
import json
import logging
import math
import re
import time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from router._text import prompt_text
from router.errors import LogError, PriceError
from training.collect import FORMATS, LogDataWarning, Logs, read_logs
from training.prices import Prices

# A warning that a test does not expect fails it.
pytestmark = pytest.mark.filterwarnings("error")

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EXAMPLE_PRICES = (
    Path(__file__).resolve().parents[2] / "examples" / "routellm-mmlu-prices.json"
)
requires_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"the real logs are not at {DATA}"
)

COLUMNS = [
    "prompt_id",
    "prompt",
    "model",
    "score",
    "cost_usd",
    "task",
    "input_tokens",
    "output_tokens",
    "source",
]


def text_id(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def write_csv(path: Path, columns: dict) -> Path:
    pl.DataFrame(columns).write_csv(path)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def long_columns(**overrides) -> dict:
    """Two prompts answered by two models, in long format."""
    columns = {
        "prompt": ["What is 2+2?", "What is 2+2?", "Name a prime.", "Name a prime."],
        "model": ["small", "large", "small", "large"],
        "score": [0.0, 1.0, 1.0, 1.0],
        "cost_usd": [0.001, 0.01, 0.002, 0.02],
    }
    columns.update(overrides)
    return columns


def write_routerbench(path: Path, **overrides) -> Path:
    """Write a RouterBench-style wide CSV with two models, ``a`` and ``b``."""
    columns = {
        "": [0, 1],
        "sample_id": ["s.0", "s.1"],
        "prompt": ["['first question']", "['second', 'question']"],
        "eval_name": ["quiz", "quiz"],
        "a": [1.0, 0.0],
        "b": [1.0, 1.0],
        "a|model_response": ["['A']", "['a longer answer']"],
        "b|model_response": ["['B']", "['B']"],
        "a|total_cost": [0.001, 0.002],
        "b|total_cost": [0.01, 0.02],
        "oracle_model_to_route_to": ["a", "b"],
    }
    columns.update(overrides)
    return write_csv(path, columns)


def write_routellm(path: Path, **overrides) -> Path:
    columns = {
        "prompt": ["Question one?", "Question two?", "Question three?"],
        "weak": [True, False, False],
        "strong": [True, True, False],
    }
    columns.update(overrides)
    return write_csv(path, columns)


def per_call(**prices: float) -> Prices:
    return Prices.from_dict(
        {model: {"per_call_usd": usd} for model, usd in prices.items()}
    )


# The returned table


def test_long_csv_frame(tmp_path):
    """Check the columns, types, order and values read from a long CSV."""
    path = write_csv(tmp_path / "logs.csv", long_columns())

    logs = read_logs(path)

    assert isinstance(logs, Logs)
    assert logs.frame.columns == COLUMNS
    assert logs.frame.schema["score"] == pl.Float64
    assert logs.frame.schema["input_tokens"] == pl.Int64
    assert logs.frame.schema["task"] == pl.String
    assert logs.frame["prompt_id"].to_list() == sorted(logs.frame["prompt_id"])
    assert logs.files == (str(path),)
    assert logs.format == ("long",)
    assert logs.models == ("large", "small")
    assert logs.changes == {}
    assert logs.n_prompts == 2
    assert set(logs.frame["source"]) == {str(path)}
    row = logs.frame.filter(
        pl.col("prompt") == "What is 2+2?", pl.col("model") == "small"
    )
    assert row["score"].item() == 0.0
    assert row["cost_usd"].item() == 0.001
    assert row["prompt_id"].item() == text_id("What is 2+2?")


def test_long_optional_columns(tmp_path):
    """Check that logged ids, tasks and token counts are kept."""
    columns = long_columns(
        prompt_id=["q1", "q1", "q2", "q2"],
        task=["math", "math", "math", None],
        input_tokens=[5, 5, 4, 4],
        output_tokens=[1, 2, None, 3],
    )
    path = write_csv(tmp_path / "logs.csv", columns)

    with pytest.warns(
        LogDataWarning, match="set the task of 1 answer to the first task"
    ):
        logs = read_logs(path)

    frame = logs.frame
    assert frame["prompt_id"].to_list() == ["q1", "q1", "q2", "q2"]
    assert frame["model"].to_list() == ["large", "small", "large", "small"]
    assert frame["input_tokens"].to_list() == [5, 5, 4, 4]
    assert frame["output_tokens"].to_list() == [2, 1, 3, None]
    # Every answer to a prompt has the prompt's task.
    assert frame["task"].to_list() == ["math"] * 4
    assert logs.changes == {"task_conflict": 1}


def test_numeric_prompt_ids_become_text(tmp_path):
    path = write_csv(tmp_path / "logs.csv", long_columns(prompt_id=[7, 7, 8, 8]))

    frame = read_logs(path).frame

    assert frame["prompt_id"].to_list() == ["7", "7", "8", "8"]


def test_jsonl_messages_and_turns(tmp_path):
    """Check that list and message prompts become the text prompt_text makes."""
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi 👋"}]},
    ]
    turns = ["first turn", "second turn"]
    records = [
        {"prompt": messages, "model": "a", "score": 1, "cost_usd": 0.1},
        {"prompt": messages, "model": "b", "score": 0, "cost_usd": 0.2},
        {"prompt": turns, "model": "a", "score": True, "cost_usd": 0.1},
        {"prompt": turns, "model": "b", "score": False, "cost_usd": 0.2},
    ]
    path = write_jsonl(tmp_path / "logs.jsonl", records)

    frame = read_logs(path).frame

    assert set(frame["prompt"]) == {prompt_text(messages), prompt_text(turns)}
    assert frame.filter(pl.col("prompt") == "first turn\nsecond turn")[
        "score"
    ].sort().to_list() == [0.0, 1.0]


def test_json_string_of_messages_stays_text(tmp_path):
    """Check that a string holding JSON messages is not parsed."""
    text = '[{"role": "user", "content": "hello"}]'
    records = [
        {"prompt": text, "model": "a", "score": 1, "cost_usd": 0.1},
        {"prompt": text, "model": "b", "score": 1, "cost_usd": 0.1},
    ]
    path = write_jsonl(tmp_path / "logs.jsonl", records)

    assert set(read_logs(path).frame["prompt"]) == {text}


def test_json_array_file(tmp_path):
    records = [
        {"prompt": "p", "model": "a", "score": 1, "cost_usd": 0.1},
        {"prompt": "p", "model": "b", "score": 0.25, "cost_usd": 0.2},
    ]
    path = tmp_path / "logs.json"
    path.write_text(json.dumps(records), encoding="utf-8")

    frame = read_logs(path).frame

    assert frame["score"].to_list() == [1.0, 0.25]


def test_parquet_list_prompts(tmp_path):
    frame = pl.DataFrame(
        {
            "prompt": [["turn one", "turn two"], ["turn one", "turn two"]],
            "model": ["a", "b"],
            "score": [True, False],
            "cost_usd": [0.5, 0.25],
        }
    )
    path = tmp_path / "logs.parquet"
    frame.write_parquet(path)

    result = read_logs(path).frame

    assert result["prompt"].to_list() == ["turn one\nturn two"] * 2
    assert result["score"].to_list() == [1.0, 0.0]


def test_parquet_message_prompts(tmp_path):
    messages = [{"role": "user", "content": "Translate: chat"}]
    frame = pl.DataFrame(
        {
            "prompt": [messages, messages],
            "model": ["a", "b"],
            "score": [1.0, 0.0],
            "cost_usd": [0.5, 0.25],
        }
    )
    path = tmp_path / "logs.parquet"
    frame.write_parquet(path)

    assert read_logs(path).frame["prompt"].to_list() == ["Translate: chat"] * 2


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["True", "False", "true", "FALSE"], [1.0, 0.0, 1.0, 0.0]),
        (["1", "0", "0.5", " 1 "], [1.0, 0.0, 0.5, 1.0]),
        ([True, False, True, True], [1.0, 0.0, 1.0, 1.0]),
    ],
)
def test_score_forms(tmp_path, values, expected):
    """Check that scores may be True/False text, numbers or booleans."""
    path = write_csv(tmp_path / "logs.csv", long_columns(score=values))

    frame = read_logs(path).frame.sort("prompt", "model", descending=[True, True])

    assert frame["score"].to_list() == expected


def test_partial_logs_kept(tmp_path):
    """Check that a model may lack answers, and unsolved prompts stay."""
    columns = {
        "prompt": ["p1", "p1", "p2", "p3"],
        "model": ["a", "b", "a", "b"],
        "score": [0, 0, 1, 0],
        "cost_usd": [0.1, 0.2, 0.1, 0.2],
    }
    path = write_csv(tmp_path / "logs.csv", columns)

    logs = read_logs(path)

    assert logs.frame.height == 4
    assert logs.n_prompts == 3
    assert logs.changes == {}


# Files, folders and formats


def test_folder_mixed_formats(tmp_path):
    """Check that each file's format is detected from its columns."""
    write_csv(tmp_path / "a_long.csv", long_columns())
    write_routerbench(tmp_path / "b_bench.csv")
    sub = tmp_path / "sub"
    sub.mkdir()
    write_routellm(sub / "c_mmlu.csv")
    prices = per_call(weak=0.001, strong=0.01)

    logs = read_logs(tmp_path, prices=prices)

    assert logs.files == (
        str(tmp_path / "a_long.csv"),
        str(tmp_path / "b_bench.csv"),
        str(sub / "c_mmlu.csv"),
    )
    assert logs.format == ("long", "routerbench", "routellm")
    assert logs.models == ("a", "b", "large", "small", "strong", "weak")


def test_list_of_paths_one_dataset(tmp_path):
    first = write_csv(tmp_path / "one.csv", long_columns())
    second = write_csv(tmp_path / "two.csv", long_columns(prompt=["x", "x", "y", "y"]))

    logs = read_logs([first, str(second)])

    assert logs.files == (str(first), str(second))
    assert logs.n_prompts == 4


def test_same_file_read_once(tmp_path):
    path = write_csv(tmp_path / "logs.csv", long_columns())

    logs = read_logs([path, tmp_path])

    assert logs.files == (str(path),)
    assert logs.changes == {}


def test_folder_skips_non_logs(tmp_path, caplog):
    """Check that a folder's non-log files are skipped with an INFO line."""
    write_csv(tmp_path / "logs.csv", long_columns())
    write_jsonl(tmp_path / "notes.jsonl", [{"text": "not a log"}])
    (tmp_path / "README.md").write_text("about these logs", encoding="utf-8")

    with caplog.at_level(logging.INFO, logger="training.collect"):
        logs = read_logs(tmp_path)

    assert logs.files == (str(tmp_path / "logs.csv"),)
    assert "notes.jsonl: its columns ['text'] match no log format" in caplog.text
    assert "README.md" in caplog.text


def test_named_non_log_raises(tmp_path):
    path = write_jsonl(tmp_path / "notes.jsonl", [{"text": "not a log"}])

    with pytest.raises(
        LogError, match=r"cannot tell the log format of .*notes\.jsonl.*\['text'\]"
    ):
        read_logs(path)


def test_forced_format(tmp_path):
    path = write_routellm(tmp_path / "mmlu_x.csv")

    logs = read_logs(path, format="routellm", prices=per_call(weak=0.0, strong=1.0))

    assert logs.format == ("routellm",)


def test_formats_constant():
    assert FORMATS == ("auto", "long", "routerbench", "routellm", "preferences")


@pytest.mark.parametrize(
    ("paths", "error", "match"),
    [
        ("does/not/exist.csv", LogError, "log path not found: does/not/exist.csv"),
        ([], LogError, "no log paths given"),
        (42, TypeError, "paths must be a path or a list of paths; got int"),
    ],
)
def test_invalid_paths(paths, error, match):
    with pytest.raises(error, match=re.escape(match)):
        read_logs(paths)


def test_folder_without_logs(tmp_path):
    (tmp_path / "README.md").write_text("nothing here", encoding="utf-8")

    with pytest.raises(LogError, match="no log files in folder"):
        read_logs(tmp_path)


def test_folder_of_non_logs(tmp_path):
    write_jsonl(tmp_path / "notes.jsonl", [{"text": "not a log"}])

    with pytest.raises(LogError, match="has the columns of a log format"):
        read_logs(tmp_path)


def test_paths_generator_and_ndjson(tmp_path):
    records = [
        {"prompt": "p", "model": "a", "score": 1, "cost_usd": 0.1},
        {"prompt": "p", "model": "b", "score": 0, "cost_usd": 0.2},
    ]
    path = write_jsonl(tmp_path / "logs.ndjson", records)

    logs = read_logs(item for item in [path])

    assert logs.files == (str(path),)
    assert logs.format == ("long",)


def test_logs_frozen(tmp_path):
    logs = read_logs(write_csv(tmp_path / "logs.csv", long_columns()))

    with pytest.raises(AttributeError):
        logs.models = ("other",)


def test_warning_points_at_caller(tmp_path):
    path = write_csv(tmp_path / "logs.csv", long_columns(score=["1", "", "1", "0"]))

    with pytest.warns(LogDataWarning) as record:
        read_logs(path)

    assert record[0].filename == __file__


def test_unsupported_extension(tmp_path):
    path = tmp_path / "logs.pkl"
    path.write_bytes(b"\x80\x04")

    with pytest.raises(LogError, match=r"unsupported extension '\.pkl'"):
        read_logs(path)


# Bad input that raises


@pytest.mark.parametrize("format", ["csv", "tsv", "", None, "LONG"])
def test_unknown_format(tmp_path, format):
    path = write_csv(tmp_path / "logs.csv", long_columns())

    with pytest.raises(
        LogError, match="accepted values are 'auto', 'long', 'routerbench', 'routellm'"
    ):
        read_logs(path, format=format)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("logs.csv", b""),
        ("logs.jsonl", b""),
        ("logs.json", b""),
        ("logs.parquet", b""),
        ("logs.csv", b"prompt,model,score,cost_usd\n"),
        ("logs.jsonl", b"\n\n"),
        ("logs.json", b"[]"),
    ],
)
def test_empty_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(LogError, match=re.escape(str(path))):
        read_logs(path)


def test_empty_parquet_with_columns(tmp_path):
    path = tmp_path / "logs.parquet"
    pl.DataFrame(schema={"prompt": pl.String, "model": pl.String}).write_parquet(path)

    with pytest.raises(
        LogError, match=r"has no rows \(columns found: \['prompt', 'model'\]\)"
    ):
        read_logs(path)


@pytest.mark.parametrize(
    ("dropped", "format"),
    [("model", "long"), ("score", "long"), ("prompt", "long"), ("prompt", "routellm")],
)
def test_missing_column(tmp_path, dropped, format):
    columns = long_columns()
    del columns[dropped]
    path = write_csv(tmp_path / "logs.csv", columns)

    with pytest.raises(
        LogError, match=rf"has no column '{dropped}'.*columns found: \["
    ):
        read_logs(path, format=format)


def test_routerbench_cost_without_score(tmp_path):
    path = write_routerbench(tmp_path / "bench.csv", **{"c|total_cost": [0.1, 0.2]})

    with pytest.raises(
        LogError, match=r"column 'c\|total_cost' but no score column 'c'"
    ):
        read_logs(path)


@pytest.mark.parametrize(
    ("cost", "shown"),
    [(float("nan"), "nan"), (float("inf"), "inf"), (-0.5, "-0.5")],
)
def test_invalid_cost(tmp_path, cost, shown):
    """Check that bad costs raise, naming the file, model, count and a row."""
    path = write_csv(
        tmp_path / "logs.csv", long_columns(cost_usd=[0.1, 0.2, cost, 0.3])
    )

    expected = (
        f"found 1 answer with a NaN, infinite or negative cost: {path}, model "
        f"'small': 1 answer, for example cost {shown} in data row 3"
    )
    with pytest.raises(LogError, match=re.escape(expected)):
        read_logs(path)


def test_invalid_routerbench_cost(tmp_path):
    path = write_routerbench(tmp_path / "bench.csv", **{"b|total_cost": [-1.0, -2.0]})

    with pytest.raises(
        LogError, match=r"model 'b': 2 answers, for example cost -1\.0 in data row 1"
    ):
        read_logs(path)


def test_cost_not_a_number(tmp_path):
    path = write_csv(
        tmp_path / "logs.csv", long_columns(cost_usd=["0.1", "free", "0.2", "0.3"])
    )

    with pytest.raises(
        LogError,
        match=(
            r"column 'cost_usd' .* must contain numbers, but has 1 invalid value, "
            "for example 'free' in data row 2"
        ),
    ):
        read_logs(path)


def test_missing_cost_without_prices(tmp_path):
    path = write_csv(
        tmp_path / "logs.csv", long_columns(cost_usd=[0.1, None, 0.2, 0.3])
    )

    with pytest.raises(
        PriceError, match=r"log no cost for 1 answer of 'large'\. Pass a price file"
    ):
        read_logs(path)


def test_long_without_cost_column(tmp_path):
    columns = long_columns()
    del columns["cost_usd"]
    path = write_csv(tmp_path / "logs.csv", columns)

    with pytest.raises(PriceError, match="'large', 'small'"):
        read_logs(path)
    logs = read_logs(path, prices=per_call(large=0.01, small=0.001))
    assert logs.frame["cost_usd"].to_list() == [0.01, 0.001, 0.01, 0.001]


@pytest.mark.parametrize(
    ("score", "shown"),
    [(1.5, "'1.5'"), (-0.1, "'-0.1'"), ("inf", "'inf'"), (2, "'2'")],
)
def test_score_outside_range(tmp_path, score, shown):
    path = write_csv(
        tmp_path / "logs.csv", long_columns(score=["1", "0", str(score), "1"])
    )

    with pytest.raises(
        LogError,
        match=(
            r"must contain scores in \[0, 1\].*has 1 invalid value, "
            f"for example {shown} in data row 3"
        ),
    ):
        read_logs(path)


def test_score_not_a_number(tmp_path):
    path = write_csv(tmp_path / "logs.csv", long_columns(score=["1", "yes", "no", "1"]))

    with pytest.raises(
        LogError,
        match=(
            "must contain numbers or True/False, but has 2 invalid values, "
            "for example 'yes'"
        ),
    ):
        read_logs(path)


def test_single_model(tmp_path):
    path = write_csv(tmp_path / "logs.csv", long_columns(model=["only"] * 4))

    with pytest.raises(
        LogError, match="routing needs at least two models; found only 'only'"
    ):
        read_logs(path)


def test_missing_model_name(tmp_path):
    path = write_csv(tmp_path / "logs.csv", long_columns(model=["a", "b", " ", "b"]))

    with pytest.raises(
        LogError,
        match="1 answer with no model name in column 'model', for example data row 3",
    ):
        read_logs(path)


@pytest.mark.parametrize("name", ["logs.csv", "logs.jsonl", "logs.json"])
def test_not_utf8(tmp_path, name):
    """Check that bytes that are not UTF-8 raise with the byte offset."""
    good = "prompt,model,score,cost_usd\nplain,a,1,0.1\n"
    if name != "logs.csv":
        good = json.dumps(
            [{"prompt": "plain", "model": "a", "score": 1, "cost_usd": 0.1}]
        )
    data = good.encode("utf-8")
    offset = data.index(b"plain") + 2
    data = data[:offset] + "é".encode("latin-1") + data[offset:]
    path = tmp_path / name
    path.write_bytes(data)

    with pytest.raises(
        LogError,
        match=(
            rf"{re.escape(str(path))} is not valid UTF-8: "
            rf"byte 0xe9 at byte offset {offset} .*Re-encode"
        ),
    ):
        read_logs(path)


def test_invalid_jsonl_line(tmp_path):
    path = tmp_path / "logs.jsonl"
    path.write_text(
        '{"prompt": "p", "model": "a", "score": 1}\n{"prompt": \n', encoding="utf-8"
    )

    with pytest.raises(LogError, match=r"line 2 of .*logs\.jsonl is not valid JSON"):
        read_logs(path)


def test_invalid_prompt_type(tmp_path):
    records = [
        {"prompt": 12, "model": "a", "score": 1, "cost_usd": 0.1},
        {"prompt": "p", "model": "b", "score": 1, "cost_usd": 0.1},
    ]
    path = write_jsonl(tmp_path / "logs.jsonl", records)

    with pytest.raises(
        LogError, match=r"the prompt in data row 1 of .* is invalid: prompt must be"
    ):
        read_logs(path)


@pytest.mark.parametrize(
    ("column", "value"),
    [("input_tokens", "-3"), ("output_tokens", "2.5"), ("output_tokens", "many")],
)
def test_invalid_token_count(tmp_path, column, value):
    path = write_csv(
        tmp_path / "logs.csv", long_columns(**{column: ["1", "2", value, "4"]})
    )

    with pytest.raises(
        LogError, match=rf"column '{column}' .* for example '{value}' in data row 3"
    ):
        read_logs(path)


# Bad input that is dropped or changed, with a warning


def test_missing_scores_dropped(tmp_path):
    path = write_csv(tmp_path / "logs.csv", long_columns(score=["1", "", "NaN", "0"]))

    with pytest.warns(
        LogDataWarning,
        match=rf"dropped 2 answers with no score: 2 in {re.escape(str(path))}$",
    ):
        logs = read_logs(path)

    assert logs.changes == {"score_missing": 2}
    assert logs.frame.height == 2


def test_routerbench_missing_scores(tmp_path):
    path = write_routerbench(
        tmp_path / "bench.csv", a=[None, 0.0], b=[1.0, float("nan")]
    )

    with pytest.warns(LogDataWarning, match="dropped 2 answers with no score"):
        logs = read_logs(path)

    assert logs.changes == {"score_missing": 2}
    assert logs.frame.height == 2


def test_blank_prompts_dropped(tmp_path):
    path = write_csv(
        tmp_path / "logs.csv", long_columns(prompt=["", " \t\n", "p", "p"])
    )

    with pytest.warns(
        LogDataWarning,
        match="dropped 2 answers with an empty or whitespace-only prompt",
    ):
        logs = read_logs(path)

    assert logs.changes == {"prompt_blank": 2}
    assert logs.n_prompts == 1


def test_empty_model_column(tmp_path):
    """Check that a model whose column is empty warns and is left out."""
    path = write_routerbench(
        tmp_path / "bench.csv",
        c=[None, None],
        **{"c|total_cost": [0.1, 0.1], "c|model_response": ["['x']", "['y']"]},
    )

    with pytest.warns(LogDataWarning) as record:
        logs = read_logs(path)

    messages = [str(warning.message) for warning in record]
    assert "dropped 2 answers with no score: 2 in " + str(path) in messages
    assert "left out 1 model with no answers left: 'c'" in messages
    assert logs.models == ("a", "b")
    assert logs.changes == {"score_missing": 2, "model_empty": 1}


def test_single_model_after_drops(tmp_path):
    path = write_routerbench(tmp_path / "bench.csv", b=[None, None])

    with pytest.raises(
        LogError, match="found only 'a'; models with no answers left: 'b'"
    ):
        read_logs(path)


def test_duplicates_merged(tmp_path):
    """Check that duplicate answers merge into their mean score and cost."""
    columns = {
        "prompt": ["p", "p", "p", "q", "q"],
        "model": ["a", "a", "b", "a", "b"],
        "score": [1, 0, 1, 1, 0],
        "cost_usd": [0.1, 0.3, 0.5, 0.1, 0.1],
        "output_tokens": [10, 11, 5, 1, 1],
    }
    path = write_csv(tmp_path / "logs.csv", columns)

    with pytest.warns(
        LogDataWarning, match="removing 1 row; the merged answer has the mean score"
    ):
        logs = read_logs(path)

    assert logs.changes == {"duplicate_merged": 1}
    merged = logs.frame.filter(pl.col("prompt") == "p", pl.col("model") == "a")
    assert merged["score"].item() == 0.5
    assert merged["cost_usd"].item() == pytest.approx(0.2)
    assert merged["output_tokens"].item() == 10  # round half to even of 10.5
    assert logs.frame.height == 4


def test_duplicates_across_files(tmp_path):
    first = write_csv(tmp_path / "a.csv", long_columns(task=["t1"] * 4))
    second = write_csv(
        tmp_path / "b.csv", long_columns(score=[1, 1, 0, 0], task=["t2"] * 4)
    )

    with pytest.warns(LogDataWarning) as record:
        logs = read_logs(tmp_path)

    assert logs.changes == {"task_conflict": 4, "duplicate_merged": 4}
    assert logs.n_prompts == 2
    assert logs.frame["score"].sort().to_list() == [0.5, 0.5, 0.5, 1.0]
    assert set(logs.frame["source"]) == {str(first)}
    assert set(logs.frame["task"]) == {"t1"}
    messages = " ".join(str(warning.message) for warning in record)
    assert f"4 in {second}" in messages


def test_conflicting_prompt_ids(tmp_path):
    """Check that one prompt text logged under two ids gets the first id."""
    path = write_csv(
        tmp_path / "logs.csv", long_columns(prompt_id=["x", "y", "z", "z"])
    )

    with pytest.warns(LogDataWarning, match="gave 1 answer the first prompt_id"):
        logs = read_logs(path)

    assert logs.changes == {"prompt_id_conflict": 1}
    assert sorted(logs.frame["prompt_id"]) == ["x", "x", "z", "z"]


def test_reused_prompt_ids(tmp_path):
    """Check that an id logged for two texts is suffixed for the second text."""
    path = write_csv(
        tmp_path / "logs.csv", long_columns(prompt_id=["x", "x", "x", "x"])
    )

    with pytest.warns(
        LogDataWarning,
        match="appended '#' and a hash of the text to the prompt_id of 2 answers",
    ):
        logs = read_logs(path)

    suffix = hashlib.sha1(b"Name a prime.").hexdigest()[:8]
    ids = logs.frame.group_by("prompt").agg(pl.col("prompt_id").unique())
    assert dict(ids.iter_rows()) == {
        "What is 2+2?": ["x"],
        "Name a prime.": [f"x#{suffix}"],
    }
    assert logs.n_prompts == 2
    assert logs.changes == {"prompt_id_reused": 2}


def test_logged_id_shared_with_unlogged_rows(tmp_path):
    """Check that rows without an id take the id logged for the same text."""
    first = write_csv(
        tmp_path / "a.csv", long_columns(prompt_id=["q1", "q1", "q2", "q2"])
    )
    write_csv(tmp_path / "b.csv", long_columns(model=["c", "d", "c", "d"]))

    logs = read_logs([first, tmp_path / "b.csv"])

    assert sorted(logs.frame["prompt_id"].unique()) == ["q1", "q2"]
    assert logs.changes == {}


def test_routerbench_not_list_literal(tmp_path):
    path = write_routerbench(tmp_path / "bench.csv", prompt=["['ok']", "plain [text"])

    with pytest.warns(LogDataWarning, match="kept the raw prompt string of 2 answers"):
        logs = read_logs(path)

    assert logs.changes == {"prompt_not_list_literal": 2}
    assert set(logs.frame["prompt"]) == {"ok", "plain [text"}


def test_routerbench_values(tmp_path):
    path = write_routerbench(tmp_path / "bench.csv")

    frame = read_logs(path).frame

    assert frame["prompt_id"].to_list() == ["s.0", "s.0", "s.1", "s.1"]
    assert (
        frame["prompt"].to_list() == ["first question"] * 2 + ["second\nquestion"] * 2
    )
    assert frame["cost_usd"].to_list() == [0.001, 0.01, 0.002, 0.02]
    assert set(frame["task"]) == {"quiz"}


def test_routellm_values(tmp_path):
    path = write_routellm(tmp_path / "mmlu_anatomy.csv")

    frame = read_logs(path, prices=per_call(weak=0.001, strong=0.01)).frame

    assert set(frame["task"]) == {"mmlu_anatomy"}
    scores = frame.filter(pl.col("model") == "weak").sort("prompt")["score"]
    assert scores.to_list() == [1.0, 0.0, 0.0]


def test_routellm_needs_prices(tmp_path):
    path = write_routellm(tmp_path / "mmlu_anatomy.csv")

    with pytest.raises(
        PriceError,
        match=(
            r"mmlu_anatomy\.csv' log no cost for 6 answers of 'strong', 'weak'\. "
            r".*--prices prices\.json"
        ),
    ):
        read_logs(path)


def test_routellm_non_boolean_value(tmp_path):
    path = write_routellm(tmp_path / "mmlu_x.csv", weak=["True", "maybe", "False"])

    with pytest.raises(
        LogError,
        match=(
            r"column 'weak' .* must contain True or False, but has 1 invalid value, "
            "for example 'maybe' in data row 2"
        ),
    ):
        read_logs(path, format="routellm")


def test_routellm_contaminated_prompts(tmp_path):
    path = write_routellm(tmp_path / "mmlu_anatomy.csv")
    listing = [
        {
            "train_prompt": "similar",
            "eval_prompt": "Question two?",
            "train_idx": 1,
            "eval_idx": 2,
        },
        {
            "train_prompt": "other",
            "eval_prompt": "Not in the logs",
            "train_idx": 3,
            "eval_idx": 9,
        },
    ]
    write_jsonl(tmp_path / "contaminated_prompts.jsonl", listing)
    prices = per_call(weak=0.001, strong=0.01)

    with pytest.warns(
        LogDataWarning,
        match="dropped 2 answers to prompts listed in contaminated_prompts.jsonl",
    ):
        logs = read_logs(tmp_path, prices=prices)

    assert logs.changes == {"contaminated_prompt": 2}
    assert "Question two?" not in set(logs.frame["prompt"])
    assert logs.files == (str(path),)


def test_named_contamination_list_raises(tmp_path):
    path = write_jsonl(
        tmp_path / "contaminated_prompts.jsonl",
        [{"train_prompt": "a", "eval_prompt": "b"}],
    )

    with pytest.raises(LogError, match="cannot tell the log format"):
        read_logs(path)


def test_one_warning_per_reason(tmp_path):
    write_csv(tmp_path / "a.csv", long_columns(score=["1", "", "1", ""]))
    write_csv(
        tmp_path / "b.csv",
        long_columns(prompt=["x", "x", "y", "y"], score=["", "1", "1", "0"]),
    )

    with pytest.warns(LogDataWarning) as record:
        logs = read_logs(tmp_path)

    assert len(record) == 1
    assert str(record[0].message) == (
        "dropped 3 answers with no score: "
        f"2 in {tmp_path / 'a.csv'}, 1 in {tmp_path / 'b.csv'}"
    )
    assert logs.changes == {"score_missing": 3}


# Prices


def test_price_file_wins(tmp_path):
    path = write_csv(tmp_path / "logs.csv", long_columns())

    with pytest.warns(LogDataWarning, match="replaced the logged cost of 2 answers"):
        logs = read_logs(path, prices=per_call(large=1.0))

    large = logs.frame.filter(pl.col("model") == "large")
    small = logs.frame.filter(pl.col("model") == "small")
    assert large["cost_usd"].to_list() == [1.0, 1.0]
    assert sorted(small["cost_usd"]) == [0.001, 0.002]
    assert logs.changes == {"cost_from_prices": 2}


def test_price_file_path(tmp_path):
    columns = long_columns()
    del columns["cost_usd"]
    path = write_csv(tmp_path / "logs.csv", columns)
    price_file = tmp_path / "prices.json"
    price_file.write_text(
        json.dumps({"large": {"per_call_usd": 0.5}, "small": {"per_call_usd": 0.25}})
    )

    logs = read_logs(path, prices=price_file)

    assert sorted(logs.frame["cost_usd"]) == [0.25, 0.25, 0.5, 0.5]


def test_price_file_lacks_model(tmp_path):
    columns = long_columns()
    del columns["cost_usd"]
    path = write_csv(tmp_path / "logs.csv", columns)

    with pytest.raises(
        PriceError,
        match=(
            "price file <dict> has no price for 'small', "
            r"and .* log no cost for their 2 answers"
        ),
    ):
        read_logs(path, prices=per_call(large=0.5))


def test_per_million_logged_tokens(tmp_path):
    columns = long_columns(
        input_tokens=[1000, 1000, 2000, 2000], output_tokens=[10, 10, 20, 20]
    )
    del columns["cost_usd"]
    path = write_csv(tmp_path / "logs.csv", columns)
    prices = Prices.from_dict(
        {
            "small": {"input_usd_per_million": 1.0, "output_usd_per_million": 2.0},
            "large": {"per_call_usd": 0.5},
        }
    )

    frame = read_logs(path, prices=prices).frame

    small = frame.filter(pl.col("model") == "small").sort("input_tokens")
    # Polars fuses the multiply-add, so the last bit may differ from Prices.cost.
    expected = [prices.cost("small", 1000, 10), prices.cost("small", 2000, 20)]
    assert small["cost_usd"].to_list() == pytest.approx(expected, rel=1e-12)
    assert small["cost_usd"].to_list() == pytest.approx([0.00102, 0.00204])


def test_per_million_needs_output_tokens(tmp_path):
    path = write_routellm(tmp_path / "mmlu_x.csv")
    prices = Prices.from_dict(
        {
            "weak": {"input_usd_per_million": 1.0, "output_usd_per_million": 2.0},
            "strong": {"per_call_usd": 0.5},
        }
    )

    with pytest.raises(
        PriceError,
        match=(
            "need output token counts, but .* log neither output_tokens nor a "
            r"response text for 3 answers of 'weak'\. .*per_call_usd price"
        ),
    ):
        read_logs(path, prices=prices)


def test_per_million_estimates_from_text(tmp_path):
    """Check the estimate of ceil(characters / 4) for prompt and response."""
    path = write_routerbench(tmp_path / "bench.csv")
    prices = Prices.from_dict(
        {"a": {"input_usd_per_million": 1e6, "output_usd_per_million": 1e7}}
    )

    with pytest.warns(LogDataWarning, match="replaced the logged cost of 2 answers"):
        frame = read_logs(path, prices=prices).frame

    costs = dict(
        frame.filter(pl.col("model") == "a").select("prompt_id", "cost_usd").iter_rows()
    )
    # "first question" has 14 characters, 4 tokens; "A" 1 token.
    assert costs["s.0"] == 4 * 1.0 + 1 * 10.0
    # "second\nquestion" has 15 characters, 4 tokens; "a longer answer" 4.
    assert costs["s.1"] == 4 * 1.0 + 4 * 10.0
    # Logged token counts are kept as logged, not replaced by estimates.
    assert frame["input_tokens"].null_count() == frame.height


def test_invalid_prices_argument(tmp_path):
    path = write_csv(tmp_path / "logs.csv", long_columns())

    with pytest.raises(
        TypeError, match="prices must be a path, a Prices object or None; got dict"
    ):
        read_logs(path, prices={"a": 1})


# Round trips


prompt_texts = st.one_of(
    st.sampled_from(
        ["😀 emoji 🚀", "你好，世界", "مرحبا بالعالم", "שָׁלוֹם", "a\r\nb", " lead"]  # noqa: RUF001
    ),
    st.text(
        alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20
    ),
).filter(lambda text: text.strip() != "")


@st.composite
def long_logs(draw):
    """Draw answers with unique (prompt, model) pairs and at least two models."""
    prompts = draw(st.lists(prompt_texts, min_size=1, max_size=4, unique=True))
    models = ["model-a", "model/b", "模型"]
    pairs = [(prompt, model) for prompt in prompts for model in models]
    chosen = draw(
        st.lists(st.sampled_from(pairs), min_size=2, max_size=len(pairs), unique=True)
    )
    first_models = [(prompts[0], models[0]), (prompts[0], models[1])]
    chosen = list(dict.fromkeys(first_models + chosen))
    scores = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1))
    costs = st.floats(0, 10, allow_nan=False, allow_infinity=False)
    return {
        "prompt": [prompt for prompt, _ in chosen],
        "model": [model for _, model in chosen],
        "score": [draw(scores) for _ in chosen],
        "cost_usd": [draw(costs) for _ in chosen],
    }


def write_long(path: Path, columns: dict) -> None:
    if path.suffix == ".csv":
        pl.DataFrame(columns).write_csv(path)
    elif path.suffix == ".parquet":
        pl.DataFrame(columns).write_parquet(path)
    else:
        records = [
            dict(zip(columns, values, strict=True))
            for values in zip(*columns.values(), strict=True)
        ]
        write_jsonl(path, records)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
@settings(max_examples=40, deadline=None)
@given(columns=long_logs())
def test_round_trip(tmp_path_factory, suffix, columns):
    """Check that written answers read back as the same rows, text intact."""
    path = tmp_path_factory.mktemp("round_trip") / f"logs{suffix}"
    write_long(path, columns)

    result = read_logs(path).frame

    expected = (
        pl.DataFrame(columns)
        .with_columns(
            pl.Series("prompt_id", [text_id(text) for text in columns["prompt"]]),
            pl.lit(None, dtype=pl.String).alias("task"),
            pl.lit(None, dtype=pl.Int64).alias("input_tokens"),
            pl.lit(None, dtype=pl.Int64).alias("output_tokens"),
            pl.lit(str(path)).alias("source"),
        )
        .select(COLUMNS)
        .sort("prompt_id", "model")
    )
    assert_frame_equal(result, expected)


@settings(max_examples=25, deadline=None)
@given(columns=long_logs(), seed=st.randoms())
def test_row_order_does_not_matter(tmp_path_factory, columns, seed):
    """Check that shuffled rows give the same frame, ids included."""
    folder = tmp_path_factory.mktemp("order")
    rows = list(zip(*columns.values(), strict=True))
    shuffled = rows[:]
    seed.shuffle(shuffled)
    write_long(folder / "a.csv", columns)
    write_long(
        folder / "b.csv",
        dict(zip(columns, map(list, zip(*shuffled, strict=True)), strict=True)),
    )

    first = read_logs(folder / "a.csv").frame.drop("source")
    second = read_logs(folder / "b.csv").frame.drop("source")

    assert_frame_equal(first, second)


# The real logs


@requires_data
def test_real_routerbench(record_property):
    start = time.perf_counter()
    with pytest.warns(LogDataWarning) as record:
        logs = read_logs(DATA / "routerbench")
    record_property("read_seconds", round(time.perf_counter() - start, 2))

    assert logs.n_prompts == 2225
    assert len(logs.models) == 11
    assert logs.format == ("routerbench",) * 3
    # arc_challenge.csv lacks 8 scores of each model and 12 of gpt-3.5-turbo-1106.
    assert logs.changes["score_missing"] == 92
    # Seven sample_ids of arc_challenge.csv name two prompts each, one of them
    # with its single turn repeated.
    assert logs.changes["prompt_id_reused"] == 7
    assert any("dropped 92 answers with no score" in str(w.message) for w in record)
    frame = logs.frame
    assert frame["score"].is_between(0, 1).all()
    assert frame["cost_usd"].is_finite().all()
    assert frame["prompt"].str.contains("^\\['").sum() == 0
    gpt4 = frame.filter(pl.col("model") == "gpt-4-1106-preview")
    assert gpt4["score"].mean() == pytest.approx(0.880, abs=0.001)


@requires_data
def test_real_routellm(record_property):
    listing = DATA / "routellm-mmlu" / "contaminated_prompts.jsonl"
    lines = listing.read_text(encoding="utf-8").splitlines()
    contaminated = [json.loads(line)["eval_prompt"] for line in lines]

    start = time.perf_counter()
    with pytest.warns(LogDataWarning):
        logs = read_logs(DATA / "routellm-mmlu", prices=EXAMPLE_PRICES)
    record_property("read_seconds", round(time.perf_counter() - start, 2))

    assert logs.models == ("gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1")
    assert len(logs.files) == 57
    assert logs.changes["contaminated_prompt"] == 2 * len(contaminated) == 10
    # 14,042 rows hold 13,937 distinct prompt texts: 105 rows repeat a prompt,
    # within one subject file or across two (clinical knowledge and college
    # medicine share 78 questions).
    assert logs.changes["duplicate_merged"] == 2 * 105
    assert logs.n_prompts == 14042 - 105 - len(contaminated)
    assert not set(contaminated) & set(logs.frame["prompt"])
    assert logs.frame["cost_usd"].is_in([0.005038, 0.0002498]).all()
    anatomy = logs.frame.filter(pl.col("task") == "mmlu_anatomy")
    assert anatomy.height == 2 * 135


@requires_data
def test_real_logs_together():
    with pytest.warns(LogDataWarning):
        logs = read_logs(
            [DATA / "routerbench", DATA / "routellm-mmlu"], prices=EXAMPLE_PRICES
        )

    assert len(logs.models) == 12
    assert logs.n_prompts == 2225 + 13932
    assert math.isfinite(logs.frame["cost_usd"].sum())
