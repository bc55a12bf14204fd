"""Records of picks, passed to a router's ``on_pick`` callback.

A record is built only when a callback is set, so a router without one pays a
single ``is None`` check per pick. The callback runs in the thread that called
``pick``, before ``pick`` returns, so a slow callback slows every pick: hand the
record to a queue if it has far to go.
"""

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PickRecord:
    """One pick, as :attr:`router.Router.on_pick` receives it.

    Attributes
    ----------
    model : str
        The model chosen.
    scores : Mapping[str, float]
        Each model's quality estimate for the prompt, in 0..1, by model name.
    cost_usd : float
        The chosen model's cost per request in the bundle, in USD.
    cost_weight : float
        The cost weight ``λ`` of the operating point used.
    quality : float or None
        The quality target that selected the operating point: the ``quality=``
        argument, else the bundle's default target. None when the bundle's
        pinned point was used.
    bundle_id : str
        The fingerprint of the bundle that made the pick.
    allowed : tuple of str or None
        The models the pick was restricted to, sorted, or None for all of them.
    time : float
        When the pick was made, in seconds since the Unix epoch.
    """

    model: str
    scores: Mapping[str, float]
    cost_usd: float
    cost_weight: float
    quality: float | None
    bundle_id: str
    allowed: tuple[str, ...] | None
    time: float


def pick_and_record(router, texts: list[str], quality, allowed) -> list[str]:
    """Pick a model for each text and pass each pick's record to ``router.on_pick``."""
    # The allowed-set check consumes an iterator, and the records need the names.
    if isinstance(allowed, Iterator):
        allowed = tuple(allowed)
    scores = router._checked_scores(texts)
    choices = router._choose_rows(scores, quality, allowed)

    points = router.operating_points
    point = points.for_quality(quality, warn=False)
    if quality is None:
        target = None if points.pinned is not None else points.default_quality
    else:
        target = float(quality)
    names = None
    if allowed is not None:
        names = tuple(sorted({allowed} if isinstance(allowed, str) else set(allowed)))
    callback = router.on_pick
    now = time.time()
    for row, choice in zip(scores.tolist(), choices):
        record = PickRecord(
            model=choice,
            scores=dict(zip(router.models, row)),
            cost_usd=router.costs[choice],
            cost_weight=float(point["cost_weight"]),
            quality=target,
            bundle_id=router.bundle_id,
            allowed=names,
            time=now,
        )
        _call(router, callback, record)
    return choices


def _call(router, callback, record: PickRecord) -> None:
    # A failing audit or shadow callback must not cost the caller its pick, and
    # logging every failure would flood the log at thousands of picks per second.
    try:
        callback(record)
    except Exception:
        router.on_pick_errors += 1
        if getattr(router, "_logged_on_pick", None) is not callback:
            router._logged_on_pick = callback
            logger.exception(
                "the on_pick callback %r raised; picks go on, and its later "
                "errors are counted in Router.on_pick_errors without being logged",
                callback,
            )
