"""Change a trained bundle's operating point or its prices without retraining.

Training stores three arrays of its validation split in the bundle:

``validation_estimates.npy``
    The head's outputs per prompt and model, float32 of shape
    ``(n_validation, n_models)`` in the bundle's model order. The correctness
    head gives each model's probability of a correct answer. The cheapest head
    gives its probability of being the cheapest correct model, and 0 for a
    model that was never that label.
``validation_scores.npy``, ``validation_costs.npy``
    The logged score and cost of each answer, float64, NaN where the model has
    no answer to the prompt.

From these, the validation quality and cost of any cost weight ``λ`` of the
family in :mod:`router._choose` can be computed again, so that:

- :func:`calibrate_shares` pins the highest-quality ``λ`` that keeps chosen
  models under a share of the calls on a sample of the user's own prompts;
- :func:`reprice` sets new per-model costs and recalibrates every operating
  point.

Both rewrite only ``manifest.json``, atomically, and give the bundle a new
``bundle_id``. The other files and their checksums stay the same. A router
loaded before the change keeps its old settings until it is loaded again.
"""

import hashlib
import json
import logging
import math
import numbers
import os
import stat
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import router
from router import _bundle
from router._choose import OperatingPoints, quality_scores
from router._text import prompt_text
from router.errors import BundleError, PriceError, UnknownModelError
from training import calibrate, label
from training.prices import Prices, load_prices

logger = logging.getLogger(__name__)

# Manifest key of each validation array, and its file in the bundle.
VALIDATION_FILES = {
    "estimates": "validation_estimates.npy",
    "scores": "validation_scores.npy",
    "costs": "validation_costs.npy",
}

# Cost weights that calibrate_shares tries: the training grid plus a grid forty
# times finer. It reaches 1e4 because two models whose costs differ by 0.01% of
# the maximum cost need a weight that large before the cheaper one wins.
FINE_COST_WEIGHTS = np.unique(np.concatenate(
    [calibrate.COST_WEIGHTS, [0.0], np.geomspace(1e-5, 1e4, 3001)]))

# Quality targets that the summary of a reprice reports.
SUMMARY_TARGETS = (0.9, 0.95, 1.0)


# Written at training


def validation_files(outputs: np.ndarray, classes: np.ndarray, scores: np.ndarray,
                     costs: np.ndarray) -> dict:
    """Return the validation arrays as bundle files, keyed by file name.

    Parameters
    ----------
    outputs : ndarray of shape (n_validation, len(classes))
        The head's native outputs on the validation prompts.
    classes : ndarray of int
        The model index of each output column.
    scores, costs : ndarray of shape (n_validation, n_models)
        Logged scores and costs, NaN where unknown.
    """
    per_model = np.zeros(scores.shape, dtype=np.float32)
    per_model[:, np.asarray(classes)] = outputs
    return {
        VALIDATION_FILES["estimates"]: per_model,
        VALIDATION_FILES["scores"]: np.asarray(scores, dtype=np.float64),
        VALIDATION_FILES["costs"]: np.asarray(costs, dtype=np.float64),
    }


def add_training_records(manifest: dict, frame) -> dict:
    """Add the validation files and each model's mean token counts to ``manifest``.

    A model gets ``mean_input_tokens`` and ``mean_output_tokens`` only when its
    logged answers carry both counts; :func:`reprice` needs them for prices per
    million tokens.
    """
    import polars as pl

    means = (
        frame.group_by("model")
        .agg(
            pl.col("input_tokens").cast(pl.Float64).mean().alias("input"),
            pl.col("output_tokens").cast(pl.Float64).mean().alias("output"),
        )
        .rows_by_key("model", unique=True)
    )
    for entry in manifest["models"]:
        input_tokens, output_tokens = means.get(entry["name"], (None, None))
        if input_tokens is not None and output_tokens is not None:
            entry["mean_input_tokens"] = float(input_tokens)
            entry["mean_output_tokens"] = float(output_tokens)
    manifest["validation"] = dict(VALIDATION_FILES)
    return manifest


# The stored validation split


@dataclass
class _Stored:
    """A bundle's manifest with its validation arrays, checked."""

    directory: Path
    manifest: dict
    models: tuple
    model_costs: np.ndarray  # float64, bundle order
    outputs: np.ndarray  # float32 (n_validation, n_models)
    scores: np.ndarray
    logged_costs: np.ndarray

    @property
    def kind(self) -> str:
        return self.manifest["head"]["kind"]

    def estimates(self) -> np.ndarray:
        """Return the validation quality estimates under the current costs."""
        order = np.argsort(self.model_costs, kind="stable")
        n_models = len(self.models)
        return quality_scores(self.kind, self.outputs, np.arange(n_models), n_models,
                              order)

    def costs(self) -> np.ndarray:
        """Return the validation costs, repriced models charged their new cost."""
        replaced = self.manifest["validation"].get("costs_replaced", [])
        costs = self.logged_costs.copy()
        known = ~np.isnan(self.scores)
        for name in replaced:
            j = self.models.index(name)
            costs[:, j] = np.where(known[:, j], self.model_costs[j], np.nan)
        return costs


def _load_stored(directory) -> _Stored:
    directory = Path(directory)
    manifest = _bundle.read_manifest(directory)
    spec = manifest.get("validation")
    if not isinstance(spec, dict) or not all(key in spec for key in VALIDATION_FILES):
        names = ", ".join(VALIDATION_FILES.values())
        msg = (
            f"bundle {directory} has no validation arrays ({names}), so its "
            "operating points cannot be recalibrated without retraining. "
            "Retrain it with this version's `router train`."
        )
        raise BundleError(msg)
    models = tuple(_bundle.require(manifest, "models"))
    names = tuple(entry["name"] for entry in models)
    model_costs = np.array([entry["cost_usd"] for entry in models], dtype=np.float64)
    arrays = {key: _bundle.load_array(directory, _bundle.listed(manifest, spec[key]))
              for key in VALIDATION_FILES}
    shape = arrays["scores"].shape
    for key, array in arrays.items():
        if array.ndim != 2 or array.shape != shape or shape[1] != len(names):
            msg = (
                f"bundle file {directory / spec[key]} has shape {array.shape}; the "
                f"validation arrays need one common shape (n_validation, "
                f"{len(names)}). Retrain the bundle."
            )
            raise BundleError(msg)
    return _Stored(directory, manifest, names, model_costs,
                   arrays["estimates"].astype(np.float32), arrays["scores"],
                   arrays["costs"])


# Pinning an operating point by share of calls


@dataclass(frozen=True)
class ShareCalibration:
    """Result of :func:`calibrate_shares`: the pinned point and its shares.

    Attributes
    ----------
    bundle : Path
        The bundle directory.
    point : dict
        The pinned operating point, as stored under
        ``operating_points["pinned"]``.
    shares : dict of str to float
        Each model's share of the sample's picks at that point.
    max_share : dict of str to float
        The limits it was calibrated to.
    n_prompts : int
        Number of prompts in the sample.
    bundle_id : str
        The bundle's new fingerprint.
    """

    bundle: Path
    point: dict
    shares: dict
    max_share: dict
    n_prompts: int
    bundle_id: str


def calibrate_shares(bundle, prompts, max_share: Mapping[str, float], *,
                     format: str = "auto") -> ShareCalibration:
    """Pin the highest-quality operating point that keeps models under a share.

    Every cost weight of :data:`FINE_COST_WEIGHTS` is applied to the sample's
    prompts to measure each model's share of the picks, and to the stored
    validation split to measure its quality and cost. Among the weights whose
    shares stay at or under every limit, the one with the highest validation
    quality is pinned, the cheaper one on a tie. It becomes the bundle's
    default: ``pick(prompt)`` uses it, and ``pick(prompt, quality=q)`` still
    uses the calibrated points.

    Parameters
    ----------
    bundle : path
        A bundle directory that this version's ``router train`` wrote.
    prompts : path or sequence
        A sample of the traffic to route, without labels: a ``.txt`` file with
        one prompt per line (every non-blank line counts), any log file or
        folder that :func:`training.collect.read_logs` reads (each distinct
        prompt text counts once), or a list of prompts.
    max_share : mapping of str to float
        Model name to the largest share of calls, in (0, 1], that it may get.
    format : str, default "auto"
        The log format of ``prompts`` when it is a log file.

    Returns
    -------
    ShareCalibration

    Raises
    ------
    UnknownModelError
        If ``max_share`` names a model the bundle does not route to.
    ValueError
        If a share is outside (0, 1], the sample is empty, or no weight meets
        the limits.
    BundleError
        If the bundle is damaged or was trained without validation arrays.

    Examples
    --------
    >>> calibrate_shares("runs/rb", "sample.txt",  # doctest: +SKIP
    ...                  {"gpt-4-1106-preview": 0.2})
    """
    stored = _load_stored(bundle)
    routed = router.load(stored.directory)
    limits = _check_limits(max_share, routed.models)
    texts, source = read_prompts(prompts, format=format)
    sample = routed._checked_scores(texts)

    validation_scores = stored.scores
    validation_costs = stored.costs()
    estimates = stored.estimates()
    relative = stored.model_costs / max(float(stored.model_costs.max()), 1e-30)
    limited = [routed.models.index(name) for name in limits]
    ceiling = np.array([limits[name] for name in limits])

    best = None
    lowest = np.ones(len(limited))
    n_models = len(routed.models)
    for weight in FINE_COST_WEIGHTS:
        # The same float32 arithmetic as Router.pick, so that the stored weight
        # reproduces these shares exactly.
        picks = np.argmax(sample - weight * routed._relative_costs, axis=1)
        shares = np.bincount(picks, minlength=n_models) / len(texts)
        lowest = np.minimum(lowest, shares[limited])
        if (shares[limited] > ceiling + 1e-12).any():
            continue
        choice = calibrate.choose(estimates, relative, weight)
        quality, cost = calibrate.choice_quality(choice, validation_scores,
                                                 validation_costs, stored.model_costs)
        key = (-np.inf if math.isnan(quality) else quality, -cost)
        if best is None or key > best[0]:
            best = (key, float(weight), quality, cost, shares)
    if best is None:
        _raise_unreachable(limits, lowest, len(texts))

    _, weight, quality, cost, shares = best
    points = stored.manifest["operating_points"]
    share_by_model = {name: round(float(share), 6)
                      for name, share in zip(routed.models, shares)}
    limit_text = ", ".join(f"{name} <= {share:g}" for name, share in limits.items())
    pinned = {
        "cost_weight": weight,
        "quality": quality,
        "cost_usd": cost,
        "relative_quality": quality / float(points["reference_quality"]),
        "reason": (
            f"highest validation quality with {limit_text} of the picks on "
            f"{len(texts)} prompts from {source}"
        ),
        "max_share": dict(limits),
        "shares_on_sample": share_by_model,
        "n_sample": len(texts),
    }
    manifest = stored.manifest
    manifest["operating_points"] = dict(points, pinned=pinned)
    OperatingPoints(manifest["operating_points"])
    bundle_id = _rewrite_manifest(stored.directory, manifest, "calibrate",
                                  {"max_share": dict(limits), "sample": source})
    logger.info("pinned cost weight %.4g of %s: validation quality %.4f, cost %.6g "
                "USD", weight, stored.directory, quality, cost)
    return ShareCalibration(stored.directory, pinned, share_by_model, dict(limits),
                            len(texts), bundle_id)


def unpin(bundle) -> str:
    """Remove the pinned operating point of a bundle and return its new id.

    ``pick(prompt)`` then uses the bundle's default quality target again.
    """
    directory = Path(bundle)
    manifest = _bundle.read_manifest(directory)
    points = dict(_bundle.require(manifest, "operating_points"))
    if points.pop("pinned", None) is None:
        return manifest.get("bundle_id", "")
    manifest["operating_points"] = points
    return _rewrite_manifest(directory, manifest, "unpin", {})


def _check_limits(max_share, models: Sequence[str]) -> dict:
    if not isinstance(max_share, Mapping) or not max_share:
        msg = (
            "max_share must be a non-empty mapping of model name to a share in "
            f"(0, 1], such as {{{models[-1]!r}: 0.2}}; got {max_share!r:.80}"
        )
        raise ValueError(msg)
    unknown = sorted(str(name) for name in max_share if name not in models)
    if unknown:
        msg = (
            f"max_share names models the bundle does not route to: {unknown}; it "
            f"routes to {list(models)}"
        )
        raise UnknownModelError(msg)
    limits = {}
    for name, share in max_share.items():
        if not isinstance(share, numbers.Real) or isinstance(share, bool):
            msg = (
                f"the max share of {name!r} must be a number in (0, 1]; got "
                f"{share!r} of type {type(share).__name__}"
            )
            raise TypeError(msg)
        if not 0.0 < share <= 1.0:
            msg = (
                f"the max share of {name!r} must be in (0, 1], such as 0.2 for "
                f"20% of the calls; got {share!r}"
            )
            raise ValueError(msg)
        limits[name] = float(share)
    return limits


def _raise_unreachable(limits: dict, lowest: np.ndarray, n_prompts: int):
    reached = ", ".join(f"{name} {low:.3f} (limit {limits[name]:g})"
                        for name, low in zip(limits, lowest))
    alone = all(low <= limits[name] + 1e-12 for name, low in zip(limits, lowest))
    why = (
        "each limit is met by some operating point, but no point meets all of "
        "them at once"
        if alone else
        f"the lowest share of the {n_prompts} prompts' picks that any operating "
        f"point gives is: {reached}"
    )
    msg = (
        f"no operating point of the bundle keeps the share of picks at or under "
        f"the limits: {why}. Raise a limit, or limit fewer models."
    )
    raise ValueError(msg)


def read_prompts(source, *, format: str = "auto") -> tuple[list[str], str]:
    """Return the prompt texts of a sample and a description of where they came from.

    Parameters
    ----------
    source : path or sequence
        A ``.txt`` file, one prompt per line and blank lines skipped; a log file
        or folder in a format of :mod:`training.collect`, each distinct prompt
        text once; or a list of prompts (str, turns or OpenAI-style messages).
    format : str, default "auto"
        The log format, as for :func:`training.collect.read_logs`.

    Raises
    ------
    ValueError
        If the sample has no prompts.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file() and path.suffix.lower() == ".txt":
            lines = path.read_text(encoding="utf-8").split("\n")
            texts = [line.rstrip("\r") for line in lines if line.strip()]
        else:
            texts = _log_prompts(path, format)
        described = str(path)
    elif isinstance(source, Sequence) and not isinstance(source, (bytes, bytearray)):
        texts = [prompt_text(prompt) for prompt in source]
        described = "a list"
    else:
        msg = (
            "prompts must be a .txt file, a log file or folder, or a list of "
            f"prompts; got {type(source).__name__}"
        )
        raise TypeError(msg)
    if not texts:
        msg = f"the prompt sample {described} has no prompts; add one per line"
        raise ValueError(msg)
    return texts, described


def _log_prompts(path: Path, format: str) -> list[str]:
    # The readers of collect give the prompts without the cost checks of
    # read_logs, so a sample needs no costs, scores or prices.
    from training import collect

    collect._check_format(format)
    changes = collect._ChangeLog()
    texts = {}
    for file, named in collect._list_files(collect._as_paths(path)):
        result = collect._read_file(file, format, named, changes)
        if result is None:
            continue
        for text in result[0]["prompt"].to_list():
            if text is not None and text.strip():
                texts.setdefault(text, None)
    return list(texts)


# Re-pricing


@dataclass(frozen=True)
class Repricing:
    """Result of :func:`reprice`: the costs before and after, and the new points.

    Attributes
    ----------
    bundle : Path
        The bundle directory.
    old_costs, new_costs : dict of str to float
        Each model's cost per request before and after, in USD.
    repriced : tuple of str
        The models the price file priced.
    ignored : tuple of str
        Priced models the bundle does not route to.
    reordered : bool
        Whether the models' cost order changed.
    unpinned : bool
        Whether a pinned point was removed; its shares were measured at the
        old prices.
    operating_points : dict
        The new ``operating_points`` entry.
    bundle_id : str
        The bundle's new fingerprint.
    """

    bundle: Path
    old_costs: dict
    new_costs: dict
    repriced: tuple
    ignored: tuple
    reordered: bool
    unpinned: bool
    operating_points: dict
    bundle_id: str


def reprice(bundle, prices) -> Repricing:
    """Set new model costs from a price file and recalibrate the operating points.

    A per-call price becomes the model's cost. A per-million price is applied
    to the model's mean logged input and output token counts, which training
    records when its logs have them. The validation answers of a repriced model
    are all charged its new cost, and the operating points are calibrated again
    on the stored validation split at the bundle's default quality target, as
    training calibrates them. Models the price file does not name keep their
    cost. A pinned point is removed, because its shares were measured at the
    old prices: run :func:`calibrate_shares` again.

    Parameters
    ----------
    bundle : path
        A bundle directory that this version's ``router train`` wrote.
    prices : path or Prices
        A price file in the format of :mod:`training.prices`, or loaded prices.

    Returns
    -------
    Repricing

    Raises
    ------
    PriceError
        If the price file is invalid, prices none of the bundle's models, or
        prices a model per million tokens whose mean token counts the bundle
        does not record.
    BundleError
        If the bundle is damaged or was trained without validation arrays.
    """
    stored = _load_stored(bundle)
    if not isinstance(prices, Prices):
        prices = load_prices(prices)
    manifest = stored.manifest
    entries = manifest["models"]
    repriced = [entry["name"] for entry in entries if entry["name"] in prices]
    ignored = tuple(sorted(set(prices.models) - set(stored.models)))
    if not repriced:
        msg = (
            f"price file {prices.source} prices none of the bundle's models "
            f"{list(stored.models)}; it prices {list(prices.models)}"
        )
        raise PriceError(msg)
    if ignored:
        logger.warning("ignoring prices of %d models the bundle does not route to: %s",
                       len(ignored), ", ".join(ignored))
    _require_token_counts(entries, prices)

    old_costs = {entry["name"]: float(entry["cost_usd"]) for entry in entries}
    for entry in entries:
        price = prices.by_model.get(entry["name"])
        if price is not None:
            entry["cost_usd"] = float(price.cost(entry.get("mean_input_tokens"),
                                                 entry.get("mean_output_tokens")))
    new_costs = {entry["name"]: float(entry["cost_usd"]) for entry in entries}
    stored.model_costs = np.array(list(new_costs.values()), dtype=np.float64)
    validation = manifest["validation"]
    validation["costs_replaced"] = sorted(set(validation.get("costs_replaced", []))
                                          | set(repriced))

    old_points = manifest["operating_points"]
    points = calibrate.operating_points(
        stored.estimates(), stored.scores, stored.costs(), stored.model_costs,
        stored.models, default_quality=old_points["default_quality"])
    unpinned = "pinned" in old_points
    if unpinned:
        logger.warning("removed the pinned operating point of %s; its shares were "
                       "measured at the old prices, so run `router calibrate` again",
                       stored.directory)
    manifest["operating_points"] = points
    manifest["metrics"].update(_validation_metrics(stored, points))
    OperatingPoints(points)

    old_order = np.argsort(list(old_costs.values()), kind="stable")
    new_order = np.argsort(stored.model_costs, kind="stable")
    bundle_id = _rewrite_manifest(stored.directory, manifest, "reprice",
                                  {"prices": prices.source, "models": repriced})
    return Repricing(stored.directory, old_costs, new_costs, tuple(repriced), ignored,
                     bool((old_order != new_order).any()), unpinned, points, bundle_id)


def _require_token_counts(entries: list, prices: Prices) -> None:
    missing = []
    for entry in entries:
        price = prices.by_model.get(entry["name"])
        counted = "mean_input_tokens" in entry and "mean_output_tokens" in entry
        if price is not None and price.per_million and not counted:
            missing.append(entry["name"])
    if missing:
        msg = (
            f"price file {prices.source} prices {missing} per million tokens, but "
            "the bundle records no mean token counts for them, because their "
            "training logs had no input_tokens and output_tokens columns. Give "
            "these models a per_call_usd price instead."
        )
        raise PriceError(msg)


def _validation_metrics(stored: _Stored, points: dict) -> dict:
    """Return the ``val_*`` metrics of training, recomputed at the new costs."""
    from training import pipeline

    n = len(stored.scores)
    val = label.Table(prompt_ids=[str(i) for i in range(n)], prompts=[""] * n,
                      tasks=[None] * n, models=stored.models, scores=stored.scores,
                      costs=stored.costs(), model_costs=stored.model_costs)
    estimates = stored.estimates()
    report = pipeline._report(points, estimates, val, stored.model_costs)
    return pipeline._metrics(report, points, estimates, val, stored.model_costs)


# Writing the manifest


def _rewrite_manifest(directory: Path, manifest: dict, command: str,
                      details: dict) -> str:
    """Record the change, give the bundle a new id and replace its manifest."""
    previous = manifest.get("bundle_id", "")
    manifest["bundle_id"] = revised_bundle_id(manifest)
    manifest.setdefault("revisions", []).append({
        "command": command,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "previous_bundle_id": previous,
        **details,
    })
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    path = directory / _bundle.MANIFEST
    # A reader sees the old manifest or the new one, never half of one: the new
    # text goes to a temporary file in the same directory, which replaces the
    # manifest in one rename.
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".manifest.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return manifest["bundle_id"]


def revised_bundle_id(manifest: dict) -> str:
    """Return the fingerprint of a bundle whose manifest was changed after training.

    It is the first 16 hex digits of a SHA-256. The hash covers the file
    checksums, as at training, and then the models and the operating points as
    canonical JSON, so that a bundle with new costs or a pinned point gets a
    new id.
    """
    files = manifest["files"]
    text = "\n".join(f"{name}:{files[name]['sha256']}" for name in sorted(files))
    routing = {"models": manifest["models"],
               "operating_points": manifest["operating_points"]}
    text += "\n" + json.dumps(routing, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
