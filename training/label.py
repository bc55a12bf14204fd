"""Label each prompt with the cheapest model that answered it correctly.

The long log frame becomes a prompt-by-model table of scores and costs. Models are
ordered by their cost per request, cheapest first, and that order is the one every
later step and the bundle use.

A model's cost per request is the mean of its logged (or priced) costs. A score
counts as correct at or above ``threshold``, so graded scores in 0..1 work as well
as 1/0 ones. A prompt that no model answered correctly is labelled with
``unanswered``, by default the most accurate model overall: when no model is
right, the strongest one is the safest choice.
"""

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from router.errors import LogError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Table:
    """Logs as dense arrays, one row per prompt and one column per model.

    Attributes
    ----------
    prompt_ids, prompts, tasks : list of str
        Per prompt; ``tasks`` entries may be None.
    models : tuple of str
        Model names, cheapest first.
    scores : ndarray of shape (n_prompts, n_models)
        Logged score in 0..1, NaN where the model has no answer for the prompt.
    costs : ndarray of shape (n_prompts, n_models)
        Logged cost in USD, NaN where the model has no answer.
    model_costs : ndarray of shape (n_models,)
        Mean cost per request of each model.
    """

    prompt_ids: list
    prompts: list
    tasks: list
    models: tuple
    scores: np.ndarray
    costs: np.ndarray
    model_costs: np.ndarray

    @property
    def accuracy(self) -> np.ndarray:
        """Mean score of each model over the prompts it answered."""
        return np.nanmean(self.scores, axis=0)

    def take(self, rows) -> "Table":
        """Return the table restricted to the given prompt rows."""
        rows = np.asarray(rows)
        return Table(
            prompt_ids=[self.prompt_ids[i] for i in rows],
            prompts=[self.prompts[i] for i in rows],
            tasks=[self.tasks[i] for i in rows],
            models=self.models,
            scores=self.scores[rows],
            costs=self.costs[rows],
            model_costs=self.model_costs,
        )


def build_table(frame: pl.DataFrame, models=None) -> Table:
    """Pivot a long log frame into a :class:`Table`.

    Parameters
    ----------
    frame : polars.DataFrame
        The ``frame`` of :func:`training.collect.read_logs`.
    models : sequence of str, optional
        Fix the model columns and their order (for evaluating a bundle on new
        logs); models absent from ``frame`` get all-NaN columns. By default the
        models of ``frame``, ordered by mean cost.
    """
    if frame.height == 0:
        msg = "the logs have no rows left to label"
        raise LogError(msg)
    per_model = mean_costs(frame)
    if models is None:
        models = tuple(per_model["model"].to_list())
        model_costs = per_model["mean_cost"].to_numpy().astype(np.float64)
    else:
        models = tuple(models)
        known = dict(zip(per_model["model"], per_model["mean_cost"]))
        model_costs = np.array([known.get(m, np.nan) for m in models])

    prompts = (
        frame.group_by("prompt_id", maintain_order=True)
        .agg(pl.col("prompt").first(), pl.col("task").first())
        .sort("prompt_id")
    )
    row_of = {pid: i for i, pid in enumerate(prompts["prompt_id"].to_list())}
    col_of = {m: j for j, m in enumerate(models)}

    scores = np.full((prompts.height, len(models)), np.nan)
    costs = np.full((prompts.height, len(models)), np.nan)
    known_rows = frame.filter(pl.col("model").is_in(list(models)))
    rows = np.array([row_of[p] for p in known_rows["prompt_id"].to_list()], dtype=np.intp)
    cols = np.array([col_of[m] for m in known_rows["model"].to_list()], dtype=np.intp)
    scores[rows, cols] = known_rows["score"].to_numpy()
    costs[rows, cols] = known_rows["cost_usd"].to_numpy()

    return Table(
        prompt_ids=prompts["prompt_id"].to_list(),
        prompts=prompts["prompt"].to_list(),
        tasks=prompts["task"].to_list(),
        models=models,
        scores=scores,
        costs=costs,
        model_costs=model_costs,
    )


def mean_costs(answers: pl.DataFrame) -> pl.DataFrame:
    """Return each model's mean ``cost_usd`` over ``answers``, cheapest first.

    The columns are ``model`` and ``mean_cost``. Each sum is exactly rounded
    (:func:`math.fsum`), so it does not depend on the order of the rows: a
    polars group-by gave means that changed in the last bits from run to run.
    """
    import math

    names = sorted(answers["model"].unique().to_list())
    column = answers["model"].replace_strict(
        {name: j for j, name in enumerate(names)}, return_dtype=pl.Int64
    ).to_numpy()
    costs = answers["cost_usd"].to_numpy().astype(np.float64)
    order = np.argsort(column, kind="stable")
    groups = np.split(costs[order], np.cumsum(np.bincount(column))[:-1])
    means = [math.fsum(group) / len(group) for group in groups]
    return pl.DataFrame({"model": names, "mean_cost": means}).sort(
        ["mean_cost", "model"])


@dataclass(frozen=True)
class Labels:
    """Cheapest-correct labels and how they were made."""

    y: np.ndarray  # model index per prompt
    correct: np.ndarray  # bool (n_prompts, n_models); False where unknown
    known: np.ndarray  # bool (n_prompts, n_models): the model has an answer
    unanswered: str  # model given to prompts that no model answered correctly
    n_unanswered: int
    threshold: float


def cheapest_correct(table: Table, *, threshold: float = 1.0,
                     unanswered: str | None = None) -> Labels:
    """Label each prompt with the cheapest model whose score is at least ``threshold``.

    Parameters
    ----------
    table : Table
        Models in cost order, cheapest first.
    threshold : float
        Scores at or above it count as correct. 1.0 suits 1/0 scores; graded
        scores need a lower one, such as 0.5.
    unanswered : str, optional
        The label of prompts that no model answered correctly. Defaults to the
        most accurate model overall.
    """
    if not 0.0 < threshold <= 1.0:
        msg = f"threshold must be in (0, 1]; got {threshold!r}"
        raise ValueError(msg)
    known = ~np.isnan(table.scores)
    correct = known & (np.nan_to_num(table.scores, nan=0.0) >= threshold - 1e-12)
    if not correct.any():
        msg = (
            f"none of the {int(known.sum()):,} answers has a score at or above the "
            f"threshold {threshold:g} (the highest score is "
            f"{float(np.nanmax(table.scores)):g}), so no model is ever correct and "
            "there is nothing to learn. Lower the threshold, such as "
            "--threshold 0.5 for graded scores, or check the score column."
        )
        raise LogError(msg)

    if unanswered is None:
        unanswered = table.models[int(np.nanargmax(table.accuracy))]
    if unanswered not in table.models:
        msg = (
            f"unanswered model {unanswered!r} is not in the logs; choose one of "
            f"{list(table.models)}"
        )
        raise LogError(msg)

    any_correct = correct.any(axis=1)
    y = np.where(any_correct, np.argmax(correct, axis=1), table.models.index(unanswered))
    n_unanswered = int((~any_correct).sum())
    if n_unanswered:
        logger.info(
            "%d of %d prompts have no correct answer; labelled %s",
            n_unanswered, len(y), unanswered,
        )
    return Labels(
        y=y.astype(np.int64),
        correct=correct,
        known=known,
        unanswered=unanswered,
        n_unanswered=n_unanswered,
        threshold=threshold,
    )
