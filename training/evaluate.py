"""Compare routers with single models on logged cost and quality.

The inputs are two ``(n_prompts, n_models)`` matrices: ``scores`` in [0, 1] and
``costs`` in USD, with NaN where a score or a cost was not logged. A router is
a set of operating points, each an array of model indices with one entry per
prompt. ``evaluate_choices`` turns these into a `Report` with the cost-quality
curve of every router, the single models, a random mix of the cheapest and the
most accurate model, the per-prompt oracle and these metrics:

- AIQ, the mean quality of the router's non-decreasing convex hull over the cost
  range of the report (RouterBench, Hu et al. 2024).
- APGR and CPT(50%), CPT(80%), the performance gap recovered between a weak and a
  strong model (RouteLLM, Ong et al. 2024).
- Cost saving and cost ratio at the quality of the most accurate single model.

``docs/metrics.md`` gives every definition with its formula and the differences
from the reference implementations. Functions here take numpy arrays, never
touch the disk except for `plot_report`, and import matplotlib only inside it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "ROUTER_NAME",
    "MIX_FRACTIONS",
    "CurvePoint",
    "Hull",
    "Report",
    "RouterMetrics",
    "aiq",
    "apgr",
    "cost_ratio_at_quality",
    "cost_save",
    "cpt",
    "evaluate_choices",
    "format_report",
    "plot_report",
    "upper_hull",
]

# Key of the main router in `Report.curves` and `Report.metrics`.
ROUTER_NAME = "router"

# Fractions of calls sent to the most accurate model along the random mix.
MIX_FRACTIONS = tuple(k / 10 for k in range(11))

# Relative slack when testing whether a hull reaches a quality. Means of the same
# scores summed in another order can differ in the last bits.
_REACH_TOLERANCE = 1e-9


@dataclass(frozen=True)
class CurvePoint:
    """One point of the cost-quality plane: a router setting, a model or a mix.

    Attributes
    ----------
    label : str
        Name of the point, such as ``"λ=0.3"``, a model name or ``"mix=0.5"``.
    quality : float
        Mean score over the covered prompts, NaN when no prompt is covered.
    cost : float
        Mean cost in USD per request over the same prompts, NaN when none is.
    coverage : int
        Number of prompts whose chosen answer has both a known score and a known
        cost. Only these prompts enter ``quality`` and ``cost``.
    shares : dict of str to float
        Share of all prompts, covered or not, sent to each model.
    """

    label: str
    quality: float
    cost: float
    coverage: int
    shares: dict[str, float]


@dataclass(frozen=True)
class RouterMetrics:
    """Scalar metrics of one cost-quality curve, with ``None`` for undefined values.

    Attributes
    ----------
    aiq : float or None
        Mean quality of the non-decreasing hull over the report's cost range.
    apgr : float or None
        Mean performance gap recovered over the strong-share axis [0, 1].
    cpt50, cpt80 : float or None
        Minimum strong share, as a fraction in [0, 1], at which the hull
        recovers 50% or 80% of the gap between the weak and the strong model.
    cost_save : float or None
        ``1 - c / c_best``, where ``c`` is the minimum hull cost that reaches the
        best single model's quality and ``c_best`` that model's cost. Negative
        when the hull reaches that quality only above ``c_best``.
    cost_ratio : float or None
        ``c_best / c``, infinite when the hull reaches the quality at zero cost.
    """

    aiq: float | None
    apgr: float | None
    cpt50: float | None
    cpt80: float | None
    cost_save: float | None
    cost_ratio: float | None


@dataclass(frozen=True)
class Report:
    """Cost-quality curves and metrics of routers evaluated on one set of prompts.

    Attributes
    ----------
    n_prompts : int
        Number of prompts evaluated.
    model_names : list of str
        Model names, in column order of the input matrices.
    curves : dict of str to list of CurvePoint
        Operating points of each router in the order given, the main router
        under `ROUTER_NAME` first.
    models : list of CurvePoint
        One point per model, for sending every prompt to it.
    random_mix : list of CurvePoint
        Expected cost and quality of sending each prompt to the most accurate
        model with probability ``f`` and to the cheapest otherwise, for each
        ``f`` in `MIX_FRACTIONS`.
    oracle : CurvePoint
        Per prompt, the cheapest model among those with the top known score.
    metrics : dict of str to RouterMetrics
        Metrics of each curve in ``curves``, under the same keys.
    random_mix_metrics : RouterMetrics
        The same metrics for the random mix, as a baseline.
    best_model, best_quality, best_cost
        Most accurate single model, its quality and its cost in USD per request.
    cheapest_model : str
        Single model with the lowest mean cost.
    strong, weak : str
        Models that define the performance gap for APGR and CPT.
    cost_range : tuple of float
        Lowest and highest mean cost among all router points and single models.
        AIQ averages every curve over this one range.
    """

    n_prompts: int
    model_names: list[str]
    curves: dict[str, list[CurvePoint]]
    models: list[CurvePoint]
    random_mix: list[CurvePoint]
    oracle: CurvePoint
    metrics: dict[str, RouterMetrics]
    random_mix_metrics: RouterMetrics
    best_model: str
    best_quality: float
    best_cost: float
    cheapest_model: str
    strong: str
    weak: str
    cost_range: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        """Convert the report to JSON-ready built-in types.

        NaN and infinite floats become ``None``, so an infinite ``cost_ratio``
        and one that is undefined look the same. ``cost_save`` distinguishes them
        because it is 1.0 in the infinite case.
        """
        return _to_plain(dataclasses.asdict(self))

    def to_json(self, **kwargs: Any) -> str:
        """Serialize `to_dict` as strict JSON, passing ``kwargs`` to `json.dumps`."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)


class Hull(NamedTuple):
    """Vertices of a non-decreasing upper convex hull.

    Both arrays are sorted and strictly increasing, and the slopes between
    consecutive vertices strictly decrease. Between vertices the hull is linear,
    and after the last vertex it stays flat.
    """

    costs: np.ndarray
    qualities: np.ndarray


def upper_hull(costs: Any, qualities: Any) -> Hull:
    """Compute the non-decreasing upper convex hull of cost-quality points.

    A point is dropped when another costs no more and is at least as good, or
    when it lies on or below the segment between two kept points. Any point on
    the hull can be reached by sending each prompt at random to one of the two
    operating points at the ends of its segment. Points with a NaN or infinite
    coordinate are ignored.

    Parameters
    ----------
    costs, qualities : array_like of shape (n_points,)
        Coordinates of the points, in any order.

    Returns
    -------
    Hull
        The vertices, which are a subset of the input points. The first vertex
        is the cheapest point, with the best quality among equally cheap ones.
        The last vertex is the cheapest point with the maximum quality. Both
        arrays are empty when no point is finite.

    Raises
    ------
    ValueError
        If ``costs`` and ``qualities`` differ in shape.

    Examples
    --------
    >>> hull = upper_hull([3.0, 1.0, 2.0, 2.0], [0.6, 0.5, 0.9, 0.4])
    >>> hull.costs.tolist(), hull.qualities.tolist()
    ([1.0, 2.0], [0.5, 0.9])
    """
    x = np.asarray(costs, dtype=float).ravel()
    y = np.asarray(qualities, dtype=float).ravel()
    if x.shape != y.shape:
        msg = (
            f"costs has shape {np.shape(costs)} but qualities has shape "
            f"{np.shape(qualities)}. Pass one quality per cost."
        )
        raise ValueError(msg)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]

    # Cost ascending, then quality descending, so that the first point at each
    # cost is the best one and a Pareto scan keeps only strict improvements.
    order = np.lexsort((-y, x))
    front: list[tuple[float, float]] = []
    for cost, quality in zip(x[order], y[order], strict=True):
        if not front or quality > front[-1][1]:
            front.append((float(cost), float(quality)))

    # Andrew's monotone chain over the Pareto front, left to right. A vertex is
    # popped unless the path turns clockwise at it, which drops collinear ones.
    vertices: list[tuple[float, float]] = []
    for point in front:
        while len(vertices) >= 2 and _cross(vertices[-2], vertices[-1], point) >= 0:
            vertices.pop()
        vertices.append(point)

    hull_costs = np.array([v[0] for v in vertices], dtype=float)
    hull_qualities = np.array([v[1] for v in vertices], dtype=float)
    return Hull(hull_costs, hull_qualities)


def aiq(
    costs: Any,
    qualities: Any,
    *,
    cost_range: tuple[float, float] | None = None,
) -> float | None:
    """Compute the Average Improvement in Quality of a cost-quality curve.

    AIQ is the mean of the non-decreasing hull over ``[c_min, c_max]``::

        AIQ = 1 / (c_max - c_min) * integral from c_min to c_max of R(c) dc

    where ``R`` follows the hull between its vertices, stays flat after the
    last one, and is 0 below the cheapest one because the router has no
    operating point at such a budget. Points outside the range still shape the
    hull. When ``c_min == c_max`` the mean over the empty range is taken as
    ``R(c_min)``.

    Parameters
    ----------
    costs, qualities : array_like of shape (n_points,)
        Operating points of one router, in any order.
    cost_range : tuple of float, optional
        ``(c_min, c_max)``. Routers are comparable only under the same range, so
        pass the range of everything compared. Defaults to the points' own
        lowest and highest cost.

    Returns
    -------
    float or None
        The AIQ in quality units, or ``None`` when no point is finite.

    Raises
    ------
    ValueError
        If the shapes differ, or if the range is reversed or not finite.

    Examples
    --------
    >>> round(aiq([1.0, 4.0, 10.0], [1 / 3, 2 / 3, 2 / 3]), 4)
    0.6111
    """
    hull = upper_hull(costs, qualities)
    if hull.costs.size == 0:
        return None
    if cost_range is None:
        x = np.asarray(costs, dtype=float).ravel()
        finite = np.isfinite(x) & np.isfinite(np.asarray(qualities, float).ravel())
        low, high = float(hull.costs[0]), float(x[finite].max())
    else:
        low, high = _check_range(cost_range)
    return _mean_over(hull, low, high, floor=0.0)


def apgr(
    shares: Any,
    qualities: Any,
    *,
    weak_quality: float,
    strong_quality: float,
) -> float | None:
    """Compute the Average Performance Gap Recovered of a curve.

    With ``PGR(q) = (q - q_weak) / (q_strong - q_weak)``, APGR is the integral
    over strong share ``x`` in [0, 1] of ``PGR(R(x))``, where ``R`` is the
    non-decreasing hull of the points in the share-quality plane. As in `aiq`,
    ``R`` stays flat after the last vertex and is quality 0 (not PGR 0) below
    the first, so APGR equals ``(AIQ over [0, 1] - q_weak) / (q_strong -
    q_weak)`` and adding a point never lowers it.

    Parameters
    ----------
    shares : array_like of shape (n_points,)
        Strong share of each point: the share of calls sent to the strong model
        for a two-model router, or ``(c - c_weak) / (c_strong - c_weak)`` as
        `evaluate_choices` uses. Values outside [0, 1] shape the hull but lie
        outside the integral.
    qualities : array_like of shape (n_points,)
        Quality of each point.
    weak_quality, strong_quality : float
        Qualities of the weak and the strong model.

    Returns
    -------
    float or None
        The APGR, or ``None`` when the two qualities are equal (PGR undefined)
        or no point is finite.

    Examples
    --------
    >>> gap = {"weak_quality": 0.4, "strong_quality": 0.8}
    >>> round(apgr([0.0, 0.5, 1.0], [0.4, 0.6, 0.8], **gap), 6)
    0.5
    """
    gap = _quality_gap(weak_quality, strong_quality)
    hull = upper_hull(shares, qualities)
    if gap is None or hull.costs.size == 0:
        return None
    mean_quality = _mean_over(hull, 0.0, 1.0, floor=0.0)
    return (mean_quality - weak_quality) / gap


def cpt(
    shares: Any,
    qualities: Any,
    percent: float,
    *,
    weak_quality: float,
    strong_quality: float,
) -> float | None:
    """Compute the Call-Performance Threshold CPT(percent) of a curve.

    CPT(x%) is the minimum strong share at which the non-decreasing hull in the
    share-quality plane reaches ``PGR = x / 100``. The hull makes the result
    unique even when the points are not monotone.

    Parameters
    ----------
    shares, qualities : array_like of shape (n_points,)
        Points as in `apgr`.
    percent : float
        Target performance gap recovered, in percent.
    weak_quality, strong_quality : float
        Qualities of the weak and the strong model.

    Returns
    -------
    float or None
        The share as a fraction in [0, 1], raised to 0 when a point cheaper than
        the weak model already reaches the target. ``None`` when the target is
        reached only beyond share 1 or never, when the two qualities are equal,
        or when no point is finite.

    Examples
    --------
    >>> gap = {"weak_quality": 0.4, "strong_quality": 0.8}
    >>> round(cpt([0.0, 1.0], [0.4, 0.8], 50, **gap), 6)
    0.5
    """
    gap = _quality_gap(weak_quality, strong_quality)
    hull = upper_hull(shares, qualities)
    if gap is None or hull.costs.size == 0:
        return None
    target = weak_quality + percent / 100 * gap
    share = _min_cost_reaching(hull, target)
    if share is None or share > 1 + _REACH_TOLERANCE:
        return None
    return min(max(share, 0.0), 1.0)


def cost_save(hull: Hull, quality: float, reference_cost: float) -> float | None:
    """Compute the cost cut at which a hull still reaches a quality.

    Returns ``1 - c / reference_cost``, where ``c`` is the minimum hull cost at
    which the hull reaches ``quality``. The value is negative when the hull
    reaches the quality only above ``reference_cost``.

    Parameters
    ----------
    hull : Hull
        Output of `upper_hull`.
    quality : float
        Quality to keep, usually the best single model's.
    reference_cost : float
        Cost of the reference, usually that model's, in USD per request.

    Returns
    -------
    float or None
        ``None`` when the hull never reaches the quality or when the reference
        cost is not positive, since no saving can be measured against it.

    Examples
    --------
    >>> cost_save(upper_hull([1.0, 4.0], [0.3, 0.9]), 0.9, 10.0)
    0.6
    """
    reached = _min_cost_reaching(hull, quality)
    if reached is None or not reference_cost > 0:
        return None
    return 1.0 - reached / reference_cost


def cost_ratio_at_quality(
    hull: Hull, quality: float, reference_cost: float
) -> float | None:
    """Compute how many times cheaper than a reference a hull reaches a quality.

    Returns ``reference_cost / c``, where ``c`` is the minimum hull cost at
    which the hull reaches ``quality``, and infinity when ``c`` is 0.

    Parameters
    ----------
    hull : Hull
        Output of `upper_hull`.
    quality : float
        Quality to reach, usually the best single model's.
    reference_cost : float
        Cost of the reference, usually that model's, in USD per request.

    Returns
    -------
    float or None
        ``None`` when the hull never reaches the quality or when the reference
        cost is not positive.

    Examples
    --------
    >>> cost_ratio_at_quality(upper_hull([1.0, 4.0], [0.3, 0.9]), 0.9, 10.0)
    2.5
    """
    reached = _min_cost_reaching(hull, quality)
    if reached is None or not reference_cost > 0:
        return None
    if reached == 0:
        return math.inf
    return reference_cost / reached


def evaluate_choices(
    scores: Any,
    costs: Any,
    model_names: Sequence[str],
    router_choices: Any,
    *,
    point_labels: Sequence[str] | None = None,
    strong: str | None = None,
    weak: str | None = None,
    random_seed: int = 0,
    extra_routers: Mapping[str, Any] | None = None,
) -> Report:
    """Evaluate a router's operating points against single models and baselines.

    A point's quality and cost are means over the prompts whose chosen answer
    has both a known score and a known cost. Other prompts are left out of that
    point's two means and counted in its ``coverage``, and a warning is logged
    for each curve that has such points. Missing answers are thus never taken as
    free or as wrong, but points with different coverage average over different
    prompts.

    Parameters
    ----------
    scores : array_like of shape (n_prompts, n_models)
        Logged quality in [0, 1] of each model on each prompt, NaN if unknown.
    costs : array_like of shape (n_prompts, n_models)
        Logged cost in USD, at least 0, NaN if unknown.
    model_names : sequence of str
        Unique name of each column.
    router_choices : array_like of int, shape (n_points, n_prompts)
        Model index chosen for each prompt at each operating point, ordered
        from the cheapest setting to the quality-first one.
    point_labels : sequence of str, optional
        Label of each operating point, such as ``"λ=0.3"``. Defaults to
        ``"point 0"``, ``"point 1"`` and so on.
    strong, weak : str, optional
        Models that bound the performance gap for APGR and CPT. Default to the
        most accurate and the cheapest single model.
    random_seed : int, default 0
        Unused. The random mix is computed from expected values, so the report
        is deterministic. The argument stays so that callers written for a
        sampled mix keep working.
    extra_routers : mapping of str to array_like, optional
        Baseline routers, each with its own ``(n_points, n_prompts)`` choices.
        Each gets a curve and metrics under its name.

    Returns
    -------
    Report

    Raises
    ------
    ValueError
        If there are no prompts or no models, or if shapes disagree. Also if a
        score lies outside [0, 1], a cost is negative or infinite, or a choice
        is not a model index. Also if a name is unknown or repeated, or if no
        model has any prompt with a known score and cost.
    TypeError
        If choices are not integers.
    """
    del random_seed
    score_matrix, cost_matrix = _check_matrices(scores, costs)
    n_prompts, n_models = score_matrix.shape
    names = _check_model_names(model_names, n_models)

    routers: dict[str, tuple[np.ndarray, list[str]]] = {}
    main = _check_choices(ROUTER_NAME, router_choices, n_prompts, n_models)
    routers[ROUTER_NAME] = (main, _check_labels(point_labels, main.shape[0]))
    for name, choices in (extra_routers or {}).items():
        if not isinstance(name, str) or name == ROUTER_NAME or name in routers:
            msg = (
                f"extra_routers has an invalid name {name!r}. Use a unique string "
                f"other than {ROUTER_NAME!r}."
            )
            raise ValueError(msg)
        checked = _check_choices(name, choices, n_prompts, n_models)
        routers[name] = (checked, _default_labels(checked.shape[0]))

    models = [
        _operating_point(
            score_matrix, cost_matrix, np.full(n_prompts, j), names, names[j]
        )
        for j in range(n_models)
    ]
    best, cheapest = _best_and_cheapest(models)
    strong_index = best if strong is None else _model_index(strong, names, models)
    weak_index = cheapest if weak is None else _model_index(weak, names, models)
    if models[strong_index].quality < models[weak_index].quality:
        logger.warning(
            "Strong model %r is less accurate than weak model %r (%.4f < %.4f), "
            "so APGR and CPT measure a negative gap.",
            names[strong_index],
            names[weak_index],
            models[strong_index].quality,
            models[weak_index].quality,
        )

    curves: dict[str, list[CurvePoint]] = {}
    for name, (choices, labels) in routers.items():
        curves[name] = [
            _operating_point(score_matrix, cost_matrix, row, names, label)
            for row, label in zip(choices, labels, strict=True)
        ]
        _warn_partial_coverage(name, curves[name], n_prompts)
    _warn_partial_coverage("single models", models, n_prompts)

    oracle = _operating_point(
        score_matrix,
        cost_matrix,
        _oracle_choice(score_matrix, cost_matrix, cheapest),
        names,
        "oracle",
    )
    random_mix = _random_mix(models[cheapest], models[best])
    cost_range = _report_cost_range(curves, models)

    def metrics_of(points: list[CurvePoint]) -> RouterMetrics:
        return _curve_metrics(
            points,
            cost_range=cost_range,
            best=models[best],
            strong=models[strong_index],
            weak=models[weak_index],
        )

    metrics = {name: metrics_of(points) for name, points in curves.items()}
    report = Report(
        n_prompts=n_prompts,
        model_names=names,
        curves=curves,
        models=models,
        random_mix=random_mix,
        oracle=oracle,
        metrics=metrics,
        random_mix_metrics=metrics_of(random_mix),
        best_model=names[best],
        best_quality=models[best].quality,
        best_cost=models[best].cost,
        cheapest_model=names[cheapest],
        strong=names[strong_index],
        weak=names[weak_index],
        cost_range=cost_range,
    )
    logger.info(
        "Evaluated %d routers on %d prompts and %d models. Router AIQ %s, APGR %s.",
        len(curves),
        n_prompts,
        n_models,
        _format_number(metrics[ROUTER_NAME].aiq, ".4f"),
        _format_number(metrics[ROUTER_NAME].apgr, ".4f"),
    )
    return report


def format_report(report: Report) -> str:
    """Render a report as fixed-width plain-text tables for a terminal.

    Quality is shown in percent with one decimal, and costs in USD per request
    with at least three significant digits for the cheapest nonzero cost.
    A dash marks a value that is undefined or never reached.
    """
    decimals = _cost_decimals(report)
    lines = [
        f"Routing report: {report.n_prompts} prompts, {len(report.model_names)} "
        "models, costs in USD per request",
    ]
    for name, points in report.curves.items():
        lines += ["", f"Router {name!r}"]
        lines += _point_table(points, report.n_prompts, decimals, "setting")

    lines += ["", "Single models (every prompt to one model)"]
    lines += _point_table(report.models, report.n_prompts, decimals, "model")

    lines += [
        "",
        f"Random mix of {report.cheapest_model} (cheapest) and {report.best_model} "
        "(most accurate)",
    ]
    ends = [report.random_mix[0], report.random_mix[len(report.random_mix) // 2]]
    ends.append(report.random_mix[-1])
    lines += _point_table(ends, report.n_prompts, decimals, "mix")

    lines += ["", "Oracle (per prompt, the cheapest model with the top score)"]
    lines += _point_table([report.oracle], report.n_prompts, decimals, "")

    low, high = report.cost_range
    lines += [
        "",
        f"Metrics: reference {report.best_model} at "
        f"{_format_percent(report.best_quality)} for "
        f"{_format_cost(report.best_cost, decimals)}; strong {report.strong}, "
        f"weak {report.weak}; AIQ over costs {_format_cost(low, decimals)} to "
        f"{_format_cost(high, decimals)}",
    ]
    rows = [[name, *_metric_cells(metrics)] for name, metrics in report.metrics.items()]
    rows.append(["random mix", *_metric_cells(report.random_mix_metrics)])
    headers = ["curve", "AIQ", "APGR", "CPT50", "CPT80", "cost save", "cost ratio"]
    lines += _table(headers, rows, right=range(1, 7))
    return "\n".join(lines) + "\n"


def plot_report(report: Report, path: str | Path) -> Path:
    """Draw the cost-quality plane of a report and save it as a PNG.

    Router curves are drawn through their points in sweep order, with their
    hull dashed. Single models are labelled dots, the random mix a dotted line
    and the oracle a star. Cost uses a log axis, so points with zero cost are
    left out, unless no cost is positive, in which case the axis is linear.
    The figure renders on a private Agg canvas and leaves pyplot's global state
    alone.

    Parameters
    ----------
    report : Report
        Output of `evaluate_choices`.
    path : str or Path
        Destination file. Its parent directory must exist.

    Returns
    -------
    Path
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    path = Path(path)
    figure = Figure(figsize=(9.0, 6.0), dpi=150, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    every_cost = [p.cost for p in _all_points(report) if math.isfinite(p.cost)]
    log_scale = any(cost > 0 for cost in every_cost)
    if log_scale and 0 in every_cost:
        logger.warning(
            "Left %d points with zero cost off the log cost axis.",
            every_cost.count(0),
        )

    def plotted(points: Sequence[CurvePoint]) -> list[CurvePoint]:
        return [
            p
            for p in points
            if math.isfinite(p.quality)
            and math.isfinite(p.cost)
            and (p.cost > 0 or not log_scale)
        ]

    def xy(points: Sequence[CurvePoint]) -> tuple[list[float], list[float]]:
        return [p.cost for p in points], [100 * p.quality for p in points]

    axes.plot(
        *xy(plotted(report.random_mix)),
        ":",
        color="0.45",
        marker=".",
        markersize=4,
        label=f"random mix ({report.cheapest_model} to {report.best_model})",
    )

    colors = _curve_colors(len(report.curves))
    for (name, points), color in zip(report.curves.items(), colors, strict=True):
        shown = plotted(points)
        label = f"{name} (AIQ {_format_percent(report.metrics[name].aiq)})"
        axes.plot(
            *xy(shown), "-o", color=color, markersize=4, linewidth=1.6, label=label
        )
        hull = upper_hull(*xy(points))
        hull_x, hull_y = _hull_curve(hull, report.cost_range[1], log_scale)
        axes.plot(hull_x, hull_y, "--", color=color, linewidth=1.0, alpha=0.7)
        if name == ROUTER_NAME and shown:
            _annotate_ends(axes, shown, color)

    models = plotted(report.models)
    axes.scatter(*xy(models), s=36, color="black", zorder=3, label="single models")
    for point in models:
        axes.annotate(
            point.label,
            (point.cost, 100 * point.quality),
            xytext=(6, -10),
            textcoords="offset points",
            fontsize=8,
        )

    oracle = plotted([report.oracle])
    axes.scatter(
        *xy(oracle),
        marker="*",
        s=220,
        color="gold",
        edgecolor="black",
        linewidth=0.7,
        zorder=4,
        label="oracle",
    )

    for point in oracle:
        axes.annotate(
            "oracle",
            (point.cost, 100 * point.quality),
            xytext=(9, 4),
            textcoords="offset points",
            fontsize=8,
        )
    positive = {cost for cost in every_cost if cost > 0}
    if len(positive) == 1:
        # Every model costs the same, so the cost axis would span a single value
        # and Matplotlib would widen it with a warning. It spans a factor of 2
        # each way instead.
        only = positive.pop()
        axes.set_xlim(only / 2, only * 2)
    if log_scale:
        axes.set_xscale("log")
        axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axes.xaxis.set_minor_formatter(NullFormatter())
    scale = "log scale" if log_scale else "linear scale"
    axes.set_xlabel(f"Mean cost per request (USD, {scale})")
    axes.set_ylabel("Mean quality (%)")
    axes.set_title(
        f"Cost and quality on {report.n_prompts} prompts (dashed: non-decreasing hull)"
    )
    axes.grid(True, which="major", alpha=0.3)
    axes.grid(True, which="minor", alpha=0.1)
    axes.legend(loc="lower right", fontsize=8, framealpha=0.9)
    figure.savefig(path)
    logger.info("Saved the cost-quality plot to %s.", path)
    return path


# ---------------------------------------------------------------- hull helpers


def _cross(
    origin: tuple[float, float], a: tuple[float, float], b: tuple[float, float]
) -> float:
    return (a[0] - origin[0]) * (b[1] - origin[1]) - (a[1] - origin[1]) * (
        b[0] - origin[0]
    )


def _mean_over(hull: Hull, low: float, high: float, *, floor: float) -> float:
    """Average the hull over [low, high], with ``floor`` before its first vertex."""
    first = float(hull.costs[0])
    if high == low:
        return floor if low < first else float(np.interp(low, *hull))

    # The floor applies up to the first vertex, then the hull is piecewise
    # linear, so the trapezoid rule on its vertices is exact.
    area = floor * max(0.0, min(high, first) - low)
    start = max(low, first)
    if start < high:
        inside = hull.costs[(hull.costs > start) & (hull.costs < high)]
        grid = np.concatenate([[start], inside, [high]])
        values = np.interp(grid, hull.costs, hull.qualities)
        area += float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(grid)))
    return area / (high - low)


def _min_cost_reaching(hull: Hull, quality: float) -> float | None:
    """Return the minimum hull cost whose hull value reaches ``quality``."""
    if hull.costs.size == 0 or not math.isfinite(quality):
        return None
    slack = _REACH_TOLERANCE * max(1.0, abs(quality))
    if quality <= hull.qualities[0] + slack:
        return float(hull.costs[0])
    if quality > hull.qualities[-1] + slack:
        return None
    if quality >= hull.qualities[-1]:
        return float(hull.costs[-1])
    return float(np.interp(quality, hull.qualities, hull.costs))


def _quality_gap(weak_quality: float, strong_quality: float) -> float | None:
    gap = strong_quality - weak_quality
    slack = _REACH_TOLERANCE * max(1.0, abs(strong_quality), abs(weak_quality))
    if not math.isfinite(gap) or abs(gap) <= slack:
        return None
    return gap


def _check_range(cost_range: tuple[float, float]) -> tuple[float, float]:
    low, high = (float(v) for v in cost_range)
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        msg = (
            f"cost_range must be a finite (c_min, c_max) with c_min <= c_max, got "
            f"{cost_range!r}."
        )
        raise ValueError(msg)
    return low, high


# ----------------------------------------------------------- report building


def _check_matrices(scores: Any, costs: Any) -> tuple[np.ndarray, np.ndarray]:
    score_matrix = np.asarray(scores, dtype=float)
    cost_matrix = np.asarray(costs, dtype=float)
    if score_matrix.ndim != 2 or score_matrix.shape != cost_matrix.shape:
        msg = (
            f"scores has shape {score_matrix.shape} but costs has shape "
            f"{cost_matrix.shape}, but both must be (n_prompts, n_models)."
        )
        raise ValueError(msg)
    n_prompts, n_models = score_matrix.shape
    if n_prompts == 0:
        msg = (
            f"scores has no prompts (shape {score_matrix.shape}). Evaluate at "
            "least one prompt."
        )
        raise ValueError(msg)
    if n_models == 0:
        msg = f"scores has no models (shape {score_matrix.shape}). Pass at least one."
        raise ValueError(msg)

    known_scores = score_matrix[~np.isnan(score_matrix)]
    if np.any((known_scores < 0) | (known_scores > 1)):
        bad = known_scores[(known_scores < 0) | (known_scores > 1)][0]
        msg = f"scores must lie in [0, 1] or be NaN, found {bad!r}."
        raise ValueError(msg)
    known_costs = cost_matrix[~np.isnan(cost_matrix)]
    if np.any((known_costs < 0) | ~np.isfinite(known_costs)):
        bad = known_costs[(known_costs < 0) | ~np.isfinite(known_costs)][0]
        msg = f"costs must be finite and at least 0, or NaN if unknown, found {bad!r}."
        raise ValueError(msg)
    return score_matrix, cost_matrix


def _check_model_names(model_names: Sequence[str], n_models: int) -> list[str]:
    names = list(model_names)
    if len(names) != n_models:
        msg = (
            f"model_names has {len(names)} names but scores has {n_models} model "
            "columns. Pass one name per column."
        )
        raise ValueError(msg)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"model_names must be strings, got {names!r}.")
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"model_names must be unique, but {repeated!r} repeat.")
    return names


def _check_choices(
    name: str, choices: Any, n_prompts: int, n_models: int
) -> np.ndarray:
    array = np.asarray(choices)
    if array.ndim != 2 or array.shape[1] != n_prompts or array.shape[0] == 0:
        msg = (
            f"Choices of {name!r} have shape {array.shape} but scores has shape "
            f"{(n_prompts, n_models)}, but choices must be (n_points, n_prompts) = "
            f"(n_points, {n_prompts}) with n_points >= 1. Wrap a single operating "
            "point as choices[None, :]."
        )
        raise ValueError(msg)
    if array.dtype.kind not in "iu":
        msg = (
            f"Choices of {name!r} must be integer model indices, got dtype "
            f"{array.dtype}."
        )
        raise TypeError(msg)
    if array.min() < 0 or array.max() >= n_models:
        bad = array[(array < 0) | (array >= n_models)][0]
        msg = (
            f"Choices of {name!r} contain {int(bad)}, which is not a model index "
            f"in [0, {n_models - 1}]."
        )
        raise ValueError(msg)
    return array.astype(np.intp)


def _check_labels(labels: Sequence[str] | None, n_points: int) -> list[str]:
    if labels is None:
        return _default_labels(n_points)
    checked = [str(label) for label in labels]
    if len(checked) != n_points:
        msg = (
            f"point_labels has {len(checked)} labels but router_choices has "
            f"{n_points} operating points. Pass one label per point."
        )
        raise ValueError(msg)
    return checked


def _default_labels(n_points: int) -> list[str]:
    return [f"point {k}" for k in range(n_points)]


def _operating_point(
    scores: np.ndarray,
    costs: np.ndarray,
    choice: np.ndarray,
    names: list[str],
    label: str,
) -> CurvePoint:
    rows = np.arange(scores.shape[0])
    chosen_scores = scores[rows, choice]
    chosen_costs = costs[rows, choice]
    known = ~(np.isnan(chosen_scores) | np.isnan(chosen_costs))
    coverage = int(known.sum())
    quality = float(chosen_scores[known].mean()) if coverage else math.nan
    cost = float(chosen_costs[known].mean()) if coverage else math.nan
    counts = np.bincount(choice, minlength=len(names)) / scores.shape[0]
    shares = {name: float(share) for name, share in zip(names, counts, strict=True)}
    return CurvePoint(label, quality, cost, coverage, shares)


def _best_and_cheapest(models: list[CurvePoint]) -> tuple[int, int]:
    """Return the indices of the most accurate and the cheapest covered model.

    Ties in quality go to the cheaper model and ties in cost to the better one,
    then to the lower index.
    """
    covered = [j for j, point in enumerate(models) if point.coverage > 0]
    if not covered:
        msg = (
            "No model has a prompt with both a known score and a known cost, so "
            "nothing can be evaluated. Check the NaN pattern of scores and costs."
        )
        raise ValueError(msg)
    best = min(covered, key=lambda j: (-models[j].quality, models[j].cost, j))
    cheapest = min(covered, key=lambda j: (models[j].cost, -models[j].quality, j))
    return best, cheapest


def _model_index(name: str, names: list[str], models: list[CurvePoint]) -> int:
    if name not in names:
        raise ValueError(f"Unknown model {name!r}, expected one of {names!r}.")
    index = names.index(name)
    if models[index].coverage == 0:
        msg = (
            f"Model {name!r} has no prompt with both a known score and a known "
            "cost, so it cannot bound the performance gap."
        )
        raise ValueError(msg)
    return index


def _oracle_choice(scores: np.ndarray, costs: np.ndarray, fallback: int) -> np.ndarray:
    """Pick per prompt the cheapest model among those with the top known score.

    With binary scores this is the cheapest correct model, or the cheapest model
    when none is correct. A prompt where no model has both values known gets
    ``fallback``, and the oracle point then leaves it out of its coverage.
    """
    known = ~(np.isnan(scores) | np.isnan(costs))
    top = np.where(known, scores, -np.inf).max(axis=1, keepdims=True)
    candidates = known & (scores == top)
    choice = np.where(candidates, costs, np.inf).argmin(axis=1)
    return np.where(known.any(axis=1), choice, fallback)


def _random_mix(cheapest: CurvePoint, best: CurvePoint) -> list[CurvePoint]:
    points = []
    for fraction in MIX_FRACTIONS:
        if cheapest.label == best.label:
            shares = {best.label: 1.0}
        else:
            shares = {cheapest.label: 1.0 - fraction, best.label: fraction}
        points.append(
            CurvePoint(
                label=f"mix={fraction:.1f}",
                quality=(1 - fraction) * cheapest.quality + fraction * best.quality,
                cost=(1 - fraction) * cheapest.cost + fraction * best.cost,
                coverage=min(cheapest.coverage, best.coverage),
                shares=shares,
            )
        )
    return points


def _report_cost_range(
    curves: dict[str, list[CurvePoint]], models: list[CurvePoint]
) -> tuple[float, float]:
    points = [p for ps in curves.values() for p in ps] + models
    known = [p.cost for p in points if math.isfinite(p.cost)]
    return min(known), max(known)


def _curve_metrics(
    points: list[CurvePoint],
    *,
    cost_range: tuple[float, float],
    best: CurvePoint,
    strong: CurvePoint,
    weak: CurvePoint,
) -> RouterMetrics:
    costs = np.array([p.cost for p in points])
    qualities = np.array([p.quality for p in points])
    hull = upper_hull(costs, qualities)
    if hull.costs.size == 0:
        return RouterMetrics(None, None, None, None, None, None)

    apgr_value = cpt50 = cpt80 = None
    if strong.cost != weak.cost:
        # The strong share is the fraction of the cost gap between the weak and
        # the strong model that a point spends. It equals the share of calls to
        # the strong model when the router uses only those two and each model
        # costs the same on every prompt.
        shares = (costs - weak.cost) / (strong.cost - weak.cost)
        gap = {"weak_quality": weak.quality, "strong_quality": strong.quality}
        apgr_value = apgr(shares, qualities, **gap)
        cpt50 = cpt(shares, qualities, 50, **gap)
        cpt80 = cpt(shares, qualities, 80, **gap)

    return RouterMetrics(
        aiq=aiq(costs, qualities, cost_range=cost_range),
        apgr=apgr_value,
        cpt50=cpt50,
        cpt80=cpt80,
        cost_save=cost_save(hull, best.quality, best.cost),
        cost_ratio=cost_ratio_at_quality(hull, best.quality, best.cost),
    )


def _warn_partial_coverage(name: str, points: list[CurvePoint], n_prompts: int) -> None:
    partial = [p for p in points if p.coverage < n_prompts]
    if not partial:
        return
    lowest = min(partial, key=lambda p: p.coverage)
    logger.warning(
        "%d of %d points of %s miss a score or cost on some prompts and average "
        "only over the rest. The lowest coverage is %d of %d prompts (%r).",
        len(partial),
        len(points),
        name,
        lowest.coverage,
        n_prompts,
        lowest.label,
    )


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(item) for item in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# ---------------------------------------------------------- text and figures


def _format_number(value: float | None, spec: str) -> str:
    if value is None or not math.isfinite(value):
        return "inf" if value == math.inf else "-"
    return format(value, spec)


def _format_percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{100 * value:.1f}%"


def _format_cost(value: float, decimals: int) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.{decimals}f}"


def _cost_decimals(report: Report) -> int:
    """Choose decimals that give the cheapest nonzero cost 3 significant digits."""
    positive = [
        p.cost for p in _all_points(report) if math.isfinite(p.cost) and p.cost > 0
    ]
    if not positive:
        return 2
    return min(12, max(2, 2 - math.floor(math.log10(min(positive)))))


def _all_points(report: Report) -> list[CurvePoint]:
    points = [p for ps in report.curves.values() for p in ps]
    return points + report.models + report.random_mix + [report.oracle]


# The shares column lists this many models, largest share first, so that rows of
# an 11-model router stay readable in a terminal.
_SHARES_SHOWN = 3


def _format_shares(shares: dict[str, float]) -> str:
    used = sorted(((s, n) for n, s in shares.items() if s), key=lambda x: -x[0])
    text = ", ".join(f"{name} {100 * share:.0f}%" for share, name in used[:_SHARES_SHOWN])
    if len(used) > _SHARES_SHOWN:
        text += f", {len(used) - _SHARES_SHOWN} more"
    return text


def _point_table(
    points: Sequence[CurvePoint], n_prompts: int, decimals: int, first_header: str
) -> list[str]:
    headers = [first_header, "quality", "cost", "coverage", "shares"]
    rows = []
    for point in points:
        rows.append(
            [
                point.label,
                _format_percent(point.quality),
                _format_cost(point.cost, decimals),
                f"{point.coverage}/{n_prompts}",
                _format_shares(point.shares),
            ]
        )
    return _table(headers, rows, right=range(1, 4))


def _metric_cells(metrics: RouterMetrics) -> list[str]:
    return [
        _format_percent(metrics.aiq),
        _format_number(metrics.apgr, ".3f"),
        _format_percent(metrics.cpt50),
        _format_percent(metrics.cpt80),
        _format_percent(metrics.cost_save),
        _format_number(metrics.cost_ratio, ".2f")
        + ("x" if metrics.cost_ratio is not None else ""),
    ]


def _table(headers: list[str], rows: list[list[str]], right: range) -> list[str]:
    widths = [
        max(len(str(row[k])) for row in [headers, *rows]) for k in range(len(headers))
    ]

    def render(cells: list[str]) -> str:
        padded = [
            cell.rjust(width) if k in right else cell.ljust(width)
            for k, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  " + "  ".join(padded).rstrip()

    return [render(headers), render(["-" * w for w in widths]), *map(render, rows)]


def _curve_colors(count: int) -> list[str]:
    palette = ["tab:blue", "tab:red", "tab:green", "tab:purple", "tab:brown"]
    palette += ["tab:pink", "tab:olive", "tab:cyan", "tab:orange"]
    return [palette[k % len(palette)] for k in range(count)]


def _hull_curve(
    hull: Hull, max_cost: float, log_scale: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Sample the hull and its flat part up to ``max_cost`` for drawing.

    The hull is linear in cost, so each segment is sampled densely, which keeps
    it true to AIQ on a log axis where a straight segment would not be.
    """
    x, y = hull.costs, hull.qualities
    if x.size and max_cost > x[-1]:
        x, y = np.append(x, max_cost), np.append(y, y[-1])
    if x.size > 1:
        dense = np.concatenate(
            [
                np.linspace(a, b, 32, endpoint=False)
                for a, b in zip(x[:-1], x[1:], strict=True)
            ]
        )
        x, y = np.append(dense, x[-1]), np.interp(np.append(dense, x[-1]), x, y)
    if log_scale:
        keep = x > 0
        x, y = x[keep], y[keep]
    return x, y


def _annotate_ends(axes: Any, points: Sequence[CurvePoint], color: str) -> None:
    """Label the first and last plotted router points with their settings."""
    ends = [(points[0], (6, 6), "left")]
    if len(points) > 1:
        ends.append((points[-1], (-6, 8), "right"))
    for point, offset, alignment in ends:
        axes.annotate(
            point.label,
            (point.cost, 100 * point.quality),
            xytext=offset,
            textcoords="offset points",
            fontsize=8,
            color=color,
            ha=alignment,
        )
