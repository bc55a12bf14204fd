"""Turn head outputs into a model choice at a calibrated operating point.

Every head yields, per prompt and model, a quality estimate ``s[m]`` in 0..1:

- the ``correctness`` head predicts each model's probability of a correct answer,
  which is ``s`` itself;
- the ``cheapest`` head predicts which model is the cheapest correct one. Then
  ``s[m]`` is the probability that some model at most as expensive as ``m`` is
  the cheapest correct one, the cumulative sum of the class probabilities in
  cost order.

Operating points form one family, indexed by a cost weight ``λ ≥ 0``::

    choice = argmax over m of  s[m] - λ · cost[m] / max(cost)

``λ = 0`` is quality first; a larger ``λ`` trades quality for cost. Ties go to
the model listed first in the bundle. Training lists the models in cost order,
so ties go to the cheaper model unless ``router reprice`` has since changed the
costs' order. Training calibrates a grid of ``λ`` on the validation split and
stores each point's validation quality and cost; ``pick(prompt, quality=q)``
takes the cheapest stored point whose validation quality is at least ``q`` times
that of the most accurate single model. ``router calibrate`` can pin one point,
which ``pick`` then uses when no ``quality`` is given.
"""

import math
import numbers
import warnings

import numpy as np

from router.errors import BundleError


class QualityNotReachedWarning(UserWarning):
    """A requested quality target is above every calibrated operating point."""


def quality_scores(head_kind: str, outputs: np.ndarray, classes: np.ndarray,
                   n_models: int, order: np.ndarray | None = None) -> np.ndarray:
    """Return the ``(n, n_models)`` quality estimates of a batch of head outputs.

    ``order`` lists the model indices from the cheapest to the most expensive
    model, and None means that the models are already in cost order, as training
    lists them. The cheapest head's cumulative sum runs in this order, so after a
    reprice that reorders the costs, each estimate still covers the models at
    most as expensive as its own.
    """
    if head_kind == "correctness":
        return outputs
    full = np.zeros((outputs.shape[0], n_models), dtype=np.float32)
    full[:, classes] = outputs
    if order is None:
        return np.cumsum(full, axis=1)
    cumulative = np.empty_like(full)
    cumulative[:, order] = np.cumsum(full[:, order], axis=1)
    return cumulative


def choose(scores: np.ndarray, relative_costs: np.ndarray, cost_weight: float):
    """Return the index of the chosen model for each row of ``scores``."""
    return np.argmax(scores - cost_weight * relative_costs, axis=-1)


class OperatingPoints:
    """The calibrated operating points of a bundle, cheapest first.

    Parameters
    ----------
    spec : dict
        The manifest's ``operating_points`` entry: ``points``, a list of dicts with
        ``cost_weight``, ``quality`` and ``cost_usd`` (validation figures), plus
        ``reference_quality`` (the most accurate single model's validation
        quality) and ``default_quality``. An optional ``pinned`` point, written
        by ``router calibrate``, is what ``for_quality(None)`` returns.
    """

    def __init__(self, spec: dict):
        try:
            points = sorted(spec["points"], key=lambda p: p["cost_usd"])
            self.reference_quality = float(spec["reference_quality"])
            self.default_quality = float(spec["default_quality"])
        except (KeyError, TypeError, ValueError) as e:
            msg = f"bundle manifest has invalid operating_points ({e!r}); retrain it"
            raise BundleError(msg) from e
        if not points:
            msg = "bundle manifest has no operating points; retrain it"
            raise BundleError(msg)
        _check_points(points, self.reference_quality, self.default_quality)
        self.pinned = spec.get("pinned")
        if self.pinned is not None:
            _check_points([self.pinned], self.reference_quality, self.default_quality)
        self.points = points
        self._relative = [p["quality"] / self.reference_quality for p in points]
        self._cache: dict[float, dict] = {}

    def for_quality(self, quality: float | None, *, warn: bool = True) -> dict:
        """Return the cheapest point whose relative quality is at least ``quality``.

        A target that no point reaches returns the highest-quality point and,
        when ``warn`` is true, emits :class:`QualityNotReachedWarning` once per
        target. ``quality=None`` returns the pinned point when the bundle has
        one, else the point of the bundle's default target.
        """
        if quality is None and self.pinned is not None:
            return self.pinned
        target = self.default_quality if quality is None else quality
        # The type is checked before the cache, because True == 1.0 would find
        # the point cached for 1.0.
        if type(target) is not float:
            if not isinstance(target, numbers.Real) or isinstance(target, bool):
                msg = (
                    f"quality must be a real number such as 0.95, or None; got "
                    f"{target!r} of type {type(target).__name__}"
                )
                raise TypeError(msg)
            target = float(target)
        point = self._cache.get(target)
        if point is not None:
            return point
        if not 0.0 <= target <= 1.5:
            msg = (
                "quality must be between 0 and 1.5, as a fraction of the most "
                f"accurate model's quality such as 0.95; got {target!r}"
            )
            raise ValueError(msg)

        # Points are in cost order, so the first that meets the target is the
        # cheapest, even where the curve is not monotonic.
        candidates = [i for i, r in enumerate(self._relative) if r >= target - 1e-12]
        if candidates:
            point = self.points[candidates[0]]
        else:
            # NaN marks a point without logged answers, so it never counts as best.
            best = int(np.argmax(np.nan_to_num(self._relative, nan=-np.inf)))
            point = self.points[best]
            if warn:
                warnings.warn(
                    f"no operating point reaches quality {target:.3f} of the most "
                    f"accurate model on validation; using the highest, "
                    f"{self._relative[best]:.3f}",
                    QualityNotReachedWarning,
                    stacklevel=3,
                )
        if warn and len(self._cache) < 1024:
            self._cache[target] = point
        return point


def _check_points(points: list, reference_quality: float, default_quality: float):
    """Raise BundleError unless the operating points can be used for picks."""
    if not (math.isfinite(reference_quality) and reference_quality > 0):
        msg = (
            f"bundle manifest has reference_quality {reference_quality!r}; it must "
            "be a positive number. Retrain the bundle."
        )
        raise BundleError(msg)
    if not 0.0 <= default_quality <= 1.5:
        msg = (
            f"bundle manifest has default_quality {default_quality!r}; it must be "
            "between 0 and 1.5. Retrain the bundle."
        )
        raise BundleError(msg)
    for point in points:
        weight = point.get("cost_weight") if isinstance(point, dict) else None
        quality = point.get("quality") if isinstance(point, dict) else None
        # A point's quality is NaN when none of its chosen answers was logged.
        if (not _is_number(weight) or not math.isfinite(weight) or weight < 0
                or not _is_number(quality)):
            msg = (
                f"bundle manifest has an invalid operating point {point!r:.120}; "
                "each needs a finite cost_weight >= 0 and a quality. Retrain the "
                "bundle."
            )
            raise BundleError(msg)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
