"""Tests of price files and costs in training.prices."""

import json
import math
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.errors import LogError, PriceError
from training.prices import ModelPrice, Prices, load_prices

pytestmark = pytest.mark.filterwarnings("error")

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
EXAMPLE_PRICES = REPO / "examples" / "routellm-mmlu-prices.json"
requires_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"the real logs are not at {DATA}"
)

PRICES = {
    "gpt-4": {"per_call_usd": 0.005},
    "mixtral": {"input_usd_per_million": 0.6, "output_usd_per_million": 1.8},
}


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_load_json(tmp_path):
    prices = load_prices(write_json(tmp_path / "prices.json", PRICES))

    assert prices.models == ("gpt-4", "mixtral")
    assert prices.source == str(tmp_path / "prices.json")
    assert "gpt-4" in prices
    assert "claude" not in prices
    assert prices.cost("gpt-4") == 0.005
    assert prices.cost("gpt-4", 10**6, 10**6) == 0.005
    assert prices.cost("mixtral", 1000, 500) == pytest.approx((600 + 900) / 1e6)


def test_load_csv(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text(
        "model,per_call_usd,input_usd_per_million,output_usd_per_million\n"
        "gpt-4,0.005,,\n"
        "mixtral,,0.6,1.8\n",
        encoding="utf-8",
    )

    result = load_prices(path)

    assert result == Prices.from_dict(PRICES, source=str(path))


def test_to_frame():
    frame = Prices.from_dict(PRICES).to_frame()

    expected = pl.DataFrame(
        {
            "model": ["gpt-4", "mixtral"],
            "per_call_usd": [0.005, None],
            "input_usd_per_million": [None, 0.6],
            "output_usd_per_million": [None, 1.8],
        }
    )
    assert frame.equals(expected)


def test_free_model():
    prices = Prices.from_dict({"local": {"per_call_usd": 0}})

    assert prices.cost("local") == 0.0


def test_price_error_is_log_error():
    assert issubclass(PriceError, LogError)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (-0.1, "-0.1"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        ("0.1", "'0.1'"),
        (True, "True"),
        (None, "None"),
        ([0.1], r"\[0.1\]"),
    ],
)
def test_invalid_price_value(tmp_path, value, shown):
    """Check that a bad price raises, naming the model and the value."""
    path = write_json(tmp_path / "prices.json", {"gpt-4": {"per_call_usd": value}})

    with pytest.raises(PriceError, match=rf"model 'gpt-4' in .*per_call_usd .*{shown}"):
        load_prices(path)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_json_non_finite_tokens(tmp_path, token):
    path = tmp_path / "prices.json"
    path.write_text(f'{{"m": {{"per_call_usd": {token}}}}}', encoding="utf-8")

    with pytest.raises(PriceError, match="per_call_usd must be a finite number >= 0"):
        load_prices(path)


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (
            {"per_call": 0.1},
            r"unknown keys \['per_call'\]; accepted keys are per_call_usd",
        ),
        ({"per_call_usd": 0.1, "currency": "USD"}, r"unknown keys \['currency'\]"),
        ({"input_usd_per_million": 1.0}, "needs either per_call_usd alone, or both"),
        (
            {
                "per_call_usd": 0.1,
                "input_usd_per_million": 1.0,
                "output_usd_per_million": 1.0,
            },
            "needs either per_call_usd alone",
        ),
        ({}, "got no price"),
        (0.1, r"must be an object such as \{\"per_call_usd\": 0.001\}; got 0.1"),
    ],
)
def test_invalid_price_entry(entry, match):
    with pytest.raises(PriceError, match=rf"price of model 'm' in <dict>.*{match}"):
        Prices.from_dict({"m": entry})


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("[]", "must contain a JSON object that maps model names to prices; got list"),
        ("{}", "lists no models"),
        (
            '{"m": {"per_call_usd": 1}, "m": {"per_call_usd": 2}}',
            r"more than once: \['m'\]",
        ),
        ('{"m": {"per_call_usd": 1,}}', "is not valid JSON: .* at line 1, column"),
        ('{"": {"per_call_usd": 1}}', "empty or non-string model name ''"),
    ],
)
def test_invalid_json_file(tmp_path, content, match):
    path = tmp_path / "prices.json"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(PriceError, match=match):
        load_prices(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (
            "model,per_call_usd,currency\nm,0.1,USD\n",
            r"must have the columns model, "
            r".*found \['model', 'per_call_usd', 'currency'\]",
        ),
        ("name,per_call_usd\nm,0.1\n", "must have the columns model"),
        ("model,per_call_usd\nm,0.1\nm,0.2\n", r"lists models more than once: \['m'\]"),
        ("model,per_call_usd\nm,cheap\n", "per_call_usd must be a number; got 'cheap'"),
        (
            "model,per_call_usd\nm,-1\n",
            r"per_call_usd must be a finite number >= 0; got -1\.0",
        ),
        ("model,per_call_usd\nm,\n", "got no price"),
    ],
)
def test_invalid_csv_file(tmp_path, content, match):
    path = tmp_path / "prices.csv"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(PriceError, match=match):
        load_prices(path)


def test_missing_file(tmp_path):
    with pytest.raises(PriceError, match=r"price file not found: .*nothing\.json"):
        load_prices(tmp_path / "nothing.json")


def test_unsupported_extension(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("m: 1", encoding="utf-8")

    with pytest.raises(
        PriceError, match=r"unsupported extension '\.yaml'; write it as \.json"
    ):
        load_prices(path)


def test_not_utf8(tmp_path):
    path = tmp_path / "prices.json"
    path.write_bytes(b'{"caf\xe9": {"per_call_usd": 1}}')

    with pytest.raises(PriceError, match=r"is not valid UTF-8 \(byte offset 5\)"):
        load_prices(path)


def test_cost_unknown_model():
    prices = Prices.from_dict(PRICES)

    with pytest.raises(
        PriceError,
        match="has no price for model 'claude'; it prices 'gpt-4', 'mixtral'",
    ):
        prices.cost("claude")


@pytest.mark.parametrize(
    ("tokens", "match"),
    [
        ((None, 10), "need input and output token counts"),
        ((10, None), "need input and output token counts"),
        ((-1, 10), "token counts must be >= 0"),
    ],
)
def test_cost_per_million_tokens(tokens, match):
    prices = Prices.from_dict(PRICES)

    with pytest.raises(PriceError, match=rf"model 'mixtral' in <dict>: .*{match}"):
        prices.cost("mixtral", *tokens)


def test_prices_read_only():
    prices = Prices.from_dict(PRICES)

    with pytest.raises(TypeError):
        prices.by_model["new"] = ModelPrice(per_call_usd=1.0)


@given(
    input_price=st.floats(0, 100),
    output_price=st.floats(0, 100),
    input_tokens=st.integers(0, 10**7),
    output_tokens=st.integers(0, 10**7),
)
def test_cost_per_million_formula(
    input_price, output_price, input_tokens, output_tokens
):
    """Check that a per-million cost is finite, >= 0 and adds both sides."""
    price = ModelPrice(
        input_usd_per_million=input_price, output_usd_per_million=output_price
    )

    cost = price.cost(input_tokens, output_tokens)

    expected = (input_tokens * input_price + output_tokens * output_price) / 1e6
    assert math.isfinite(cost)
    assert cost >= 0
    assert cost == pytest.approx(expected)


def test_example_file_loads():
    prices = load_prices(EXAMPLE_PRICES)

    assert prices.models == (
        "gpt-4-1106-preview",
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
    )
    assert not any(prices.by_model[model].per_million for model in prices.models)


@requires_data
def test_example_prices_match_routerbench():
    """Check the example prices against RouterBench's mean cost per call."""
    files = sorted((DATA / "routerbench").glob("*.csv"))
    costs = pl.concat(
        pl.read_csv(path).select(
            pl.col("gpt-4-1106-preview|total_cost").alias("gpt-4-1106-preview"),
            pl.col("mistralai/mixtral-8x7b-chat|total_cost").alias("mixtral"),
        )
        for path in files
    )
    prices = load_prices(EXAMPLE_PRICES)

    gpt4 = prices.cost("gpt-4-1106-preview")
    mixtral = prices.cost("mistralai/Mixtral-8x7B-Instruct-v0.1")
    assert len(files) == 3
    assert gpt4 == pytest.approx(costs["gpt-4-1106-preview"].mean(), rel=1e-3)
    assert mixtral == pytest.approx(costs["mixtral"].mean(), rel=1e-3)
