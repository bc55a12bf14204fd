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
the cheaper model, because models are kept in cost order and argmax takes the
first maximum. Training calibrates a grid of ``λ`` on the validation split and
stores each point's validation quality and cost; ``pick(prompt, quality=q)``
takes the cheapest stored point whose validation quality is at least ``q`` times
that of the most accurate single model.
"""

import warnings

import numpy as np

from router.errors import BundleError


class QualityNotReachedWarning(UserWarning):
    """A requested quality target is above every calibrated operating point."""


def quality_scores(head_kind: str, outputs: np.ndarray, classes: np.ndarray,
                   n_models: int) -> np.ndarray:
    """Return the ``(n, n_models)`` quality estimates of a batch of head outputs."""
    if head_kind == "correctness":
        return outputs
    full = np.zeros((outputs.shape[0], n_models), dtype=np.float32)
    full[:, classes] = outputs
    return np.cumsum(full, axis=1)


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
        quality) and ``default_quality``.
    """

    def __init__(self, spec: dict):
        try:
            points = sorted(spec["points"], key=lambda p: p["cost_usd"])
            self.reference_quality = float(spec["reference_quality"])
            self.default_quality = float(spec["default_quality"])
        except (KeyError, TypeError) as e:
            msg = f"bundle manifest has invalid operating_points ({e!r}); retrain it"
            raise BundleError(msg) from e
        if not points:
            msg = "bundle manifest has no operating points; retrain it"
            raise BundleError(msg)
        self.points = points
        self._relative = [p["quality"] / self.reference_quality for p in points]
        self._cache: dict[float, dict] = {}

    def for_quality(self, quality: float | None, *, warn: bool = True) -> dict:
        """Return the cheapest point whose relative quality is at least ``quality``.

        A target that no point reaches returns the highest-quality point and,
        when ``warn`` is true, emits :class:`QualityNotReachedWarning` once per
        target.
        """
        target = self.default_quality if quality is None else quality
        try:
            point = self._cache.get(target)
        except TypeError:  # unhashable, so not a number: rejected below
            point = None
        if point is not None:
            return point
        if not isinstance(target, (int, float)) or isinstance(target, bool):
            msg = f"quality must be a number between 0 and 1; got {target!r}"
            raise TypeError(msg)
        if not 0.0 <= target <= 1.5 or target != target:
            msg = (
                f"quality must be a fraction of the most accurate model's quality, "
                f"such as 0.95; got {target!r}"
            )
            raise ValueError(msg)

        # Points are in cost order, so the first that meets the target is the
        # cheapest, even where the curve is not monotonic.
        candidates = [i for i, r in enumerate(self._relative) if r >= target - 1e-12]
        if candidates:
            point = self.points[candidates[0]]
        else:
            best = int(np.argmax(self._relative))
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
