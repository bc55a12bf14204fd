"""Calibrate the operating points of a router on held-out prompts.

The family is the one :mod:`router._choose` applies at pick time: the chosen model
maximizes ``s[m] - λ · cost[m] / max(cost)``. Each ``λ`` of a fixed grid is
scored on the validation prompts with the logged outcomes, and the bundle keeps
every distinct point with its validation quality and mean cost per request.
"""

import numpy as np

from router._choose import choose
from router.errors import LogError

# λ = 0 is quality first. At λ = 100 the cheapest model wins unless another's
# score is higher by 100 times its relative cost, which no score in 0..1 reaches.
COST_WEIGHTS = np.concatenate([[0.0], np.geomspace(1e-4, 100.0, 80)])


def choice_quality(choice: np.ndarray, scores: np.ndarray, costs: np.ndarray,
                   model_costs: np.ndarray) -> tuple[float, float]:
    """Return the mean logged score and cost of the chosen answers.

    Prompts whose chosen answer was not logged are left out of the quality mean,
    and are charged the chosen model's mean cost.
    """
    rows = np.arange(len(choice))
    chosen = scores[rows, choice]
    cost = costs[rows, choice]
    cost = np.where(np.isnan(cost), model_costs[choice], cost)
    quality = float(np.nanmean(chosen)) if np.isfinite(chosen).any() else float("nan")
    return quality, float(cost.mean())


def sweep(estimates: np.ndarray, model_costs: np.ndarray,
          weights=COST_WEIGHTS) -> np.ndarray:
    """Return the choices of each cost weight, shape ``(len(weights), n_prompts)``."""
    relative = model_costs / max(float(np.max(model_costs)), 1e-30)
    return np.stack([choose(estimates, relative, w) for w in weights])


def operating_points(estimates: np.ndarray, scores: np.ndarray, costs: np.ndarray,
                     model_costs: np.ndarray, models, *, default_quality: float,
                     weights=COST_WEIGHTS) -> dict:
    """Return the manifest's ``operating_points`` entry from validation data.

    Parameters
    ----------
    estimates : ndarray of shape (n_prompts, n_models)
        The head's quality estimates on the validation prompts.
    scores, costs : ndarray of shape (n_prompts, n_models)
        The logged outcomes of those prompts (NaN where unknown).
    model_costs : ndarray of shape (n_models,)
        Mean cost per request of each model, cheapest first.
    models : sequence of str
        Model names in the same order.
    default_quality : float
        The quality target ``pick`` uses when none is given, as a fraction of the
        most accurate single model's validation quality.
    """
    accuracy = _mean_known(scores)
    if not np.nanmax(accuracy, initial=0.0) > 0:
        msg = (
            f"no model answered any of the {len(scores)} validation prompts "
            "correctly, so the operating points cannot be calibrated. Add logs with "
            "correct answers, or hold out more prompts with a larger validation "
            "share."
        )
        raise LogError(msg)
    best = int(np.nanargmax(accuracy))
    choices = sweep(estimates, model_costs, weights)

    points = []
    seen = set()
    for weight, choice in zip(weights, choices):
        quality, cost = choice_quality(choice, scores, costs, model_costs)
        key = (round(quality, 12), round(cost, 15))
        if key in seen:
            continue
        seen.add(key)
        shares = np.bincount(choice, minlength=len(model_costs)) / len(choice)
        points.append({
            "cost_weight": float(weight),
            "quality": quality,
            "cost_usd": cost,
            "relative_quality": quality / float(accuracy[best]),
            "shares": [round(float(s), 6) for s in shares],
        })
    points.sort(key=lambda p: (p["cost_usd"], -p["quality"]))
    return {
        "family": "argmax_m s[m] - cost_weight * cost[m] / max(cost)",
        "reference_model": models[best],
        "reference_quality": float(accuracy[best]),
        "default_quality": float(default_quality),
        "points": points,
    }


def _mean_known(scores: np.ndarray) -> np.ndarray:
    """Return each column's mean over its non-NaN entries, NaN for an empty column.

    Unlike ``np.nanmean``, it does not warn when a model has no validation answer.
    """
    known = ~np.isnan(scores)
    counts = known.sum(axis=0)
    totals = np.where(known, scores, 0.0).sum(axis=0)
    means = np.full(scores.shape[1], np.nan)
    np.divide(totals, counts, out=means, where=counts > 0)
    return means
