"""Load per-model prices, used to cost logged answers that carry no cost.

A price file is a JSON object that maps each model name to one of two price
shapes::

    {
      "gpt-4-1106-preview": {"per_call_usd": 0.005038},
      "mistralai/Mixtral-8x7B-Instruct-v0.1": {
        "input_usd_per_million": 0.6,
        "output_usd_per_million": 0.6
      }
    }

``per_call_usd`` is a flat price per answer. ``input_usd_per_million`` and
``output_usd_per_million`` price the tokens of the prompt and of the response,
and come as a pair. A price is a finite number >= 0. Any other key, a duplicate
model name or a model with both shapes raises :class:`~router.errors.PriceError`.

A CSV file with the header ``model,per_call_usd,input_usd_per_million,
output_usd_per_million`` is read the same way, one model per row, with the cells
of the unused shape left empty. Columns other than these four are rejected.

Per-million prices need token counts. :func:`training.collect.read_logs` uses
the ``input_tokens`` and ``output_tokens`` logged with each answer, and when a
count is missing it estimates the count as ``ceil(characters / 4)`` of the prompt
text or of the response text. That ratio is a rule of thumb for English text, so
these costs are estimates, and they can be far off for code or for non-Latin
scripts.
"""

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import polars as pl

from router.errors import PriceError

logger = logging.getLogger(__name__)

PER_CALL_KEYS = frozenset({"per_call_usd"})
PER_MILLION_KEYS = frozenset({"input_usd_per_million", "output_usd_per_million"})
PRICE_KEYS = ("per_call_usd", "input_usd_per_million", "output_usd_per_million")


@dataclass(frozen=True)
class ModelPrice:
    """The price of one model: either per call, or per million tokens.

    Raises
    ------
    PriceError
        If both shapes or neither are given, if only one per-million price is
        given, or if a price is negative, NaN or infinite.
    """

    per_call_usd: float | None = None
    input_usd_per_million: float | None = None
    output_usd_per_million: float | None = None

    def __post_init__(self):
        present = {key for key in PRICE_KEYS if getattr(self, key) is not None}
        if present != PER_CALL_KEYS and present != PER_MILLION_KEYS:
            msg = (
                f"needs either per_call_usd alone, or both input_usd_per_million and "
                f"output_usd_per_million; got {sorted(present) or 'no price'}"
            )
            raise PriceError(msg)
        for key in present:
            value = getattr(self, key)
            if not math.isfinite(value) or value < 0:
                msg = f"{key} must be a finite number >= 0; got {value!r}"
                raise PriceError(msg)

    @property
    def per_million(self) -> bool:
        """Whether the price depends on token counts."""
        return self.per_call_usd is None

    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float:
        """Compute the cost in USD of one call with these token counts.

        Token counts are ignored by a per-call price, and required by a
        per-million price.
        """
        if not self.per_million:
            return self.per_call_usd
        if input_tokens is None or output_tokens is None:
            msg = (
                "per-million prices need input and output token counts; "
                f"got input_tokens={input_tokens!r}, output_tokens={output_tokens!r}"
            )
            raise PriceError(msg)
        if input_tokens < 0 or output_tokens < 0:
            msg = (
                "token counts must be >= 0; "
                f"got input_tokens={input_tokens}, output_tokens={output_tokens}"
            )
            raise PriceError(msg)
        input_usd = input_tokens * self.input_usd_per_million
        output_usd = output_tokens * self.output_usd_per_million
        return (input_usd + output_usd) / 1e6


@dataclass(frozen=True)
class Prices:
    """Prices of several models, keyed by model name.

    Attributes
    ----------
    by_model : Mapping[str, ModelPrice]
        The price of each model, read-only.
    source : str
        Where the prices came from, a file path or ``"<dict>"``, for messages.

    Examples
    --------
    >>> prices = Prices.from_dict({"a": {"per_call_usd": 0.002}})
    >>> prices.cost("a")
    0.002
    """

    by_model: Mapping[str, ModelPrice]
    source: str = "<dict>"
    _models: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not self.by_model:
            msg = f"price file {self.source} lists no models"
            raise PriceError(msg)
        object.__setattr__(self, "by_model", MappingProxyType(dict(self.by_model)))
        object.__setattr__(self, "_models", tuple(sorted(self.by_model)))

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "<dict>") -> "Prices":
        """Validate a mapping in the price-file format and build ``Prices``.

        Parameters
        ----------
        data : Mapping
            Model name to ``{"per_call_usd": x}`` or to
            ``{"input_usd_per_million": a, "output_usd_per_million": b}``.
        source : str, default "<dict>"
            Where ``data`` came from, named in error messages.

        Returns
        -------
        Prices

        Raises
        ------
        PriceError
            If the mapping is not in the format above; the message names the
            model, the key and the value.
        """
        if not isinstance(data, Mapping):
            msg = (
                f"price file {source} must contain a JSON object that maps model "
                f"names to prices; got {type(data).__name__}"
            )
            raise PriceError(msg)
        by_model = {
            model: _parse_model_price(model, entry, source)
            for model, entry in data.items()
        }
        return cls(by_model, source=source)

    @property
    def models(self) -> tuple[str, ...]:
        """Names of the priced models, sorted."""
        return self._models

    def __contains__(self, model: object) -> bool:
        return model in self.by_model

    def cost(
        self,
        model: str,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> float:
        """Compute the cost in USD of one call to ``model``.

        Parameters
        ----------
        model : str
            A priced model.
        input_tokens, output_tokens : int, optional
            Token counts of the prompt and of the response. Required when the
            model has per-million prices, ignored for a per-call price.

        Returns
        -------
        float

        Raises
        ------
        PriceError
            If ``model`` has no price, or if it has per-million prices and a
            token count is missing or negative.
        """
        if model not in self.by_model:
            msg = (
                f"price file {self.source} has no price for model {model!r}; "
                f"it prices {', '.join(map(repr, self.models))}"
            )
            raise PriceError(msg)
        try:
            return self.by_model[model].cost(input_tokens, output_tokens)
        except PriceError as error:
            msg = f"model {model!r} in {self.source}: {error}"
            raise PriceError(msg) from None

    def to_frame(self) -> pl.DataFrame:
        """Return one row per model with the columns ``model`` and ``PRICE_KEYS``."""
        rows = {
            "model": list(self.models),
            **{
                key: [getattr(self.by_model[model], key) for model in self.models]
                for key in PRICE_KEYS
            },
        }
        schema = {"model": pl.String, **dict.fromkeys(PRICE_KEYS, pl.Float64)}
        return pl.DataFrame(rows, schema=schema)


def load_prices(path: str | Path) -> Prices:
    """Read a price file, JSON (``.json``) or CSV (``.csv``).

    See the module docstring for the format.

    Parameters
    ----------
    path : str or Path
        The price file.

    Returns
    -------
    Prices

    Raises
    ------
    PriceError
        If the file is missing, is not UTF-8, cannot be parsed, or is not in
        the price-file format.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        msg = f"price file not found: {source}"
        raise PriceError(msg)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        msg = (
            f"price file {source} is not valid UTF-8 (byte offset {error.start}); "
            "re-encode it as UTF-8"
        )
        raise PriceError(msg) from None

    suffix = path.suffix.lower()
    if suffix == ".json":
        data = _parse_json(text, source)
    elif suffix == ".csv":
        data = _parse_csv(path, source)
    else:
        msg = (
            f"price file {source} has the unsupported extension {suffix!r}; "
            "write it as .json (or .csv)"
        )
        raise PriceError(msg)

    prices = Prices.from_dict(data, source=source)
    logger.info("read prices of %d models from %s", len(prices.models), source)
    return prices


def _parse_model_price(model: object, entry: object, source: str) -> ModelPrice:
    if not isinstance(model, str) or not model.strip():
        msg = f"price file {source} has an empty or non-string model name {model!r}"
        raise PriceError(msg)
    if not isinstance(entry, Mapping):
        msg = (
            f"price of model {model!r} in {source} must be an object such as "
            f'{{"per_call_usd": 0.001}}; got {entry!r}'
        )
        raise PriceError(msg)

    unknown = sorted(set(entry) - set(PRICE_KEYS))
    if unknown:
        msg = (
            f"price of model {model!r} in {source} has unknown keys {unknown}; "
            f"accepted keys are {', '.join(PRICE_KEYS)}"
        )
        raise PriceError(msg)
    values = {key: _parse_price_value(model, key, entry[key], source) for key in entry}
    try:
        return ModelPrice(**values)
    except PriceError as error:
        msg = f"price of model {model!r} in {source}: {error}"
        raise PriceError(msg) from None


def _parse_price_value(model: str, key: str, value: object, source: str) -> float:
    """Check that a price is a number; range checks are left to ``ModelPrice``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = (
            f"price of model {model!r} in {source}: {key} must be a number; "
            f"got {value!r}"
        )
        raise PriceError(msg)
    return float(value)


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        msg = f"the price file lists these keys more than once: {duplicates}"
        raise PriceError(msg)
    return dict(pairs)


def _parse_json(text: str, source: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as error:
        msg = (
            f"price file {source} is not valid JSON: {error.msg} at line "
            f"{error.lineno}, column {error.colno}"
        )
        raise PriceError(msg) from None
    except PriceError as error:
        msg = f"{source}: {error}"
        raise PriceError(msg) from None


def _parse_csv(path: Path, source: str) -> dict[str, dict[str, float]]:
    try:
        table = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError) as error:
        msg = f"price file {source} is not a readable CSV file: {error}"
        raise PriceError(msg) from None

    unknown = sorted(set(table.columns) - {"model", *PRICE_KEYS})
    if "model" not in table.columns or unknown:
        msg = (
            f"price file {source} must have the columns model, "
            f"{', '.join(PRICE_KEYS)}; found {table.columns}"
        )
        raise PriceError(msg)
    duplicates = table.filter(pl.col("model").is_duplicated())["model"].unique()
    if len(duplicates):
        msg = f"price file {source} lists models more than once: {duplicates.to_list()}"
        raise PriceError(msg)

    data = {}
    for row in table.iter_rows(named=True):
        model = row.pop("model")
        data[model] = {
            key: _parse_csv_number(model, key, text, source)
            for key, text in row.items()
            if text is not None and text.strip()
        }
    return data


def _parse_csv_number(model: str | None, key: str, text: str, source: str) -> float:
    try:
        return float(text)
    except ValueError:
        msg = (
            f"price of model {model!r} in {source}: {key} must be a number; "
            f"got {text!r}"
        )
        raise PriceError(msg) from None
