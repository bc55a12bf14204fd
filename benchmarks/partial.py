"""Measure how much of a router's saving survives training on partial logs.

Real traffic logs hold one answer per request, from whichever model served it,
while RouterBench logs every model's answer to every prompt. This script keeps
one answer per prompt of RouterBench, of a model drawn at random (seeded), and
trains the default router (static features, correctness head, logistic
regression) on that. A router trained on the full logs is the reference. Both
use the same grouped folds (:func:`training.split.grouped_folds`). Within each
fold, both split the training part as :func:`training.train` does: the head is
fitted on 80% of it and its operating points are calibrated on the other 20%,
each router on its own logs. Both are evaluated on the held-out prompts with
the full logs, so every choice is scored on a logged answer.

Two curves per router are compared:

- calibrated: each fold routes its held-out prompts at the point that
  ``OperatingPoints.for_quality(q)`` returns for ``q`` = 0.50, 0.51, …, 1.10,
  which is what ``pick(prompt, quality=q)`` delivers;
- λ sweep: every cost weight of ``training.calibrate.COST_WEIGHTS``, which
  measures the head's ranking without the calibration's error.

The saving is ``1 - c / c_ref``, where ``c`` is the minimum cost on the upper
hull of a curve that reaches 95% of the reference model's held-out quality and
``c_ref`` is that model's cost. The share that survives is the partial-log
router's saving over the full-log router's.

Run from the repository root::

    python benchmarks/partial.py --write BENCHMARKS.md
"""

import argparse
import shlex
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# A checkout need not be installed: the repository root holds both packages.
sys.path.insert(0, str(ROOT))

from _common import (  # noqa: E402
    CALIBRATION_SHARE,
    Fold,
    machine,
    make_folds,
    write_section,
)

from router._choose import OperatingPoints, quality_scores  # noqa: E402
from training import calibrate, collect, embed, evaluate, fit, label  # noqa: E402

REFERENCE_MODEL = "gpt-4-1106-preview"
# Quality bars, as shares of the reference model's quality on the prompts.
BARS = (0.90, 0.95)
QUALITY_TARGETS = np.round(np.arange(0.50, 1.1001, 0.01), 2)
REPORTED_TARGETS = (0.9, 0.95, 1.0)



def keep_one_answer(table: label.Table, seed: int) -> label.Table:
    """Return ``table`` with one logged answer per prompt, of a random model."""
    rng = np.random.default_rng(seed)
    known = ~np.isnan(table.scores)
    keep = np.zeros_like(known)
    for i in range(len(table.prompts)):
        columns = np.flatnonzero(known[i])
        keep[i, rng.choice(columns)] = True
    scores = np.where(keep, table.scores, np.nan)
    costs = np.where(keep, table.costs, np.nan)
    return label.Table(table.prompt_ids, table.prompts, table.tasks, table.models,
                       scores, costs, table.model_costs)


def cross_validate(logged: label.Table, X: np.ndarray, folds: list[Fold],
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the held-out choices by quality target and by cost weight.

    ``logged`` is what the router trains and calibrates on; the choices cover
    every prompt once per target or weight, pooled over the folds.
    """
    n_models = len(logged.models)
    by_target = np.zeros((len(QUALITY_TARGETS), len(logged.prompts)), dtype=np.intp)
    by_weight = np.zeros((len(calibrate.COST_WEIGHTS), len(logged.prompts)),
                         dtype=np.intp)
    for fold in folds:
        labels = label.cheapest_correct(logged.take(fold.fit))
        head = fit.fit_head("correctness", "logreg", X[fold.fit], y=labels.y,
                            correct=labels.correct, known=labels.known, seed=seed)
        cal_estimates, test_estimates = (
            quality_scores(head.kind, head.predict_outputs(X[rows]), head.classes,
                           n_models)
            for rows in (fold.calibrate, fold.test))
        train = np.concatenate([fold.fit, fold.calibrate])
        model_costs = np.nanmean(logged.costs[train], axis=0)
        cal = logged.take(fold.calibrate)
        points = OperatingPoints(calibrate.operating_points(
            cal_estimates, cal.scores, cal.costs, model_costs, logged.models,
            default_quality=0.95))
        weights = [points.for_quality(float(q), warn=False)["cost_weight"]
                   for q in QUALITY_TARGETS]
        by_target[:, fold.test] = calibrate.sweep(test_estimates, model_costs, weights)
        by_weight[:, fold.test] = calibrate.sweep(test_estimates, model_costs)
    # Reports list points from the cheapest setting to the quality-first one.
    return by_target, by_weight[::-1]


@dataclass
class Saving:
    """Cost of a curve at a quality bar, and its saving against the reference."""

    cost: float | None
    saving: float | None


def saving_at_bar(points: list, reference, share: float) -> Saving:
    """Return the minimum hull cost reaching ``share`` of the reference's quality."""
    hull = evaluate.upper_hull([p.cost for p in points], [p.quality for p in points])
    ratio = evaluate.cost_ratio_at_quality(hull, share * reference.quality,
                                           reference.cost)
    if ratio is None:
        return Saving(None, None)
    cost = reference.cost / ratio
    return Saving(cost, 1.0 - cost / reference.cost)


@dataclass
class Run:
    """The reports of one partial-log seed: by quality target and by cost weight."""

    seed: int
    by_target: evaluate.Report
    by_weight: evaluate.Report


def run(args) -> tuple[label.Table, list[Run], float]:
    """Cross-validate the full-log router and one partial-log router per seed."""
    started = time.perf_counter()
    with warnings.catch_warnings():
        # The cleaning counts are reported in the output instead.
        warnings.simplefilter("ignore", collect.LogDataWarning)
        logs = collect.read_logs(args.data / "routerbench")
    table = label.build_table(logs.frame)
    X = embed.make_featurizer("static").transform(table.prompts)
    folds = make_folds(table.prompts, args.folds, args.fold_seed)
    full_target, full_weight = cross_validate(table, X, folds, args.fold_seed)
    print(f"full logs: {time.perf_counter() - started:.0f} s", file=sys.stderr,
          flush=True)

    target_labels = [f"q={q:.2f}" for q in QUALITY_TARGETS]
    weight_labels = [f"λ={w:.3g}" for w in calibrate.COST_WEIGHTS[::-1]]
    runs = []
    for seed in args.seeds:
        partial = keep_one_answer(table, seed)
        partial_target, partial_weight = cross_validate(partial, X, folds,
                                                        args.fold_seed)
        runs.append(Run(
            seed,
            evaluate_pair(table, full_target, partial_target, target_labels),
            evaluate_pair(table, full_weight, partial_weight, weight_labels),
        ))
        print(f"partial logs, seed {seed}: {time.perf_counter() - started:.0f} s",
              file=sys.stderr, flush=True)
    return table, runs, time.perf_counter() - started


def evaluate_pair(table: label.Table, full: np.ndarray, partial: np.ndarray,
                  labels: list[str]) -> evaluate.Report:
    return evaluate.evaluate_choices(
        table.scores, table.costs, list(table.models), full, point_labels=labels,
        extra_routers={"partial": partial})


# ------------------------------------------------------------------- output


def _usd(value) -> str:
    return "not reached" if value is None else f"{value:.6f}"


def _percent(value, decimals: int = 1) -> str:
    return "–" if value is None or not np.isfinite(value) else (
        f"{100 * value:.{decimals}f}")


def _survival(partial: Saving, full: Saving) -> float | None:
    """Return the partial-log saving over the full-log one, 0 if never reached."""
    if full.saving is None or full.saving <= 0:
        return None
    return 0.0 if partial.saving is None else partial.saving / full.saving


def _curve_rows(seed: int, curve: str, report: evaluate.Report, reference,
                kept: dict) -> list[str]:
    """Return the rows of one curve, full logs then partial logs.

    Each partial-log survival share is also appended to ``kept[(curve, bar)]``.
    """
    full = {share: saving_at_bar(report.curves[evaluate.ROUTER_NAME], reference,
                                 share)
            for share in BARS}
    rows = []
    for name, key in (("full logs", evaluate.ROUTER_NAME),
                      ("partial logs", "partial")):
        points = report.curves[key]
        cells = [str(seed), curve, name, _percent(report.metrics[key].aiq, 2),
                 _percent(max(p.quality for p in points))]
        for share in BARS:
            reached = saving_at_bar(points, reference, share)
            survives = ""
            if key == "partial":
                share_kept = _survival(reached, full[share])
                survives = _percent(share_kept, 0)
                kept.setdefault((curve, share), []).append(share_kept)
            cells += [_usd(reached.cost), _percent(reached.saving), survives]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def targets_table(report: evaluate.Report) -> list[str]:
    """Return held-out quality, cost and calibration gap at the reported targets."""
    lines = [
        "| router | " + " | ".join(f"q={q:g} quality % | cost USD | gap pp"
                                   for q in REPORTED_TARGETS) + " |",
        "|---|" + "---:|" * (3 * len(REPORTED_TARGETS)),
    ]
    for name, key in (("full logs", evaluate.ROUTER_NAME),
                      ("partial logs", "partial")):
        cells = []
        for q in REPORTED_TARGETS:
            index = int(np.flatnonzero(np.isclose(QUALITY_TARGETS, q))[0])
            point = report.curves[key][index]
            gap = point.quality / report.best_quality - q
            cells += [_percent(point.quality), f"{point.cost:.6f}",
                      f"{100 * gap:+.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def markdown(args, table: label.Table, runs: list[Run], elapsed: float) -> str:
    """Return the Markdown section of the comparison."""
    first = runs[0].by_target
    reference = first.models[first.model_names.index(REFERENCE_MODEL)]
    command = "python " + shlex.join(["benchmarks/partial.py", *sys.argv[1:]])
    n_answers = int((~np.isnan(table.scores)).sum())

    lines = [
        "## Training on partial logs",
        "",
        f"Command: `{command}` (from the repository root), run on "
        f"{date.today().isoformat()} in {elapsed / 60:.1f} minutes on {_machine()}.",
        "",
        f"RouterBench: {len(table.prompts)} prompts, {len(table.models)} models and "
        f"{n_answers} answers. The partial logs keep one answer per prompt, of a "
        "model drawn uniformly among those that answered it, one draw per seed. "
        f"Method: {args.folds} grouped folds (seed {args.fold_seed}); in each, the "
        f"head is fitted on {1 - CALIBRATION_SHARE:.0%} of the training part and "
        f"calibrated on the other {CALIBRATION_SHARE:.0%}, on the full or the "
        "partial logs; both routers are scored on the held-out prompts with the "
        f"full logs. {REFERENCE_MODEL} scores {_percent(reference.quality)}% on "
        f"these prompts at {reference.cost:.6f} USD per request. For each bar, a "
        "share of that quality, the cost is the minimum cost on the curve's upper "
        "hull that reaches the bar, the saving is 1 − that cost / the model's "
        "cost, and 'survives' is the partial-log saving / the full-log saving, 0 "
        "when the partial-log curve never reaches the bar. The λ sweep replays "
        "every cost weight on the held-out prompts, so it leaves out the "
        "calibration's error.",
        "",
        "| partial-log seed | curve | router | AIQ | max quality % | "
        + " | ".join(f"cost at {share:.0%}, USD | saving % | survives %"
                     for share in BARS) + " |",
        "|---:|---|---|---:|---:|" + "---:|" * (3 * len(BARS)),
    ]

    kept = {}
    for result in runs:
        lines += _curve_rows(result.seed, "calibrated", result.by_target, reference,
                             kept)
        lines += _curve_rows(result.seed, "λ sweep", result.by_weight, reference,
                             kept)

    lines += ["", f"Share of the saving that survives, over the {len(runs)} seeds:",
              ""]
    for (curve, share), shares in kept.items():
        values = [s for s in shares if s is not None]
        if values:
            lines.append(f"- {curve}, {share:.0%} bar: mean "
                         f"{100 * np.mean(values):.0f}%, from {100 * min(values):.0f}% "
                         f"to {100 * max(values):.0f}%")

    lines += [
        "",
        f"Held-out quality and cost at calibrated targets, partial-log seed "
        f"{runs[0].seed}; the gap is quality / {first.best_model}'s − q, in "
        "percentage points:",
        "",
        *targets_table(first),
    ]
    return "\n".join(lines)


def _machine() -> str:
    import sklearn

    return machine({"scikit-learn": sklearn.__version__})


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare a router trained on one answer per prompt with one "
                    "trained on every answer, on RouterBench.")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder with routerbench/ (default: %(default)s)")
    parser.add_argument("--folds", type=int, default=5,
                        help="number of grouped folds (default: 5)")
    parser.add_argument("--fold-seed", type=int, default=0,
                        help="seed of the folds, the inner split and the estimators")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                        help="seeds of the answer kept per prompt (default: 0 to 4)")
    parser.add_argument("--write", type=Path, metavar="MARKDOWN",
                        help="replace the partial-logs section of this Markdown "
                             "file, such as BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error(f"--folds must be at least 2; got {args.folds}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not (args.data / "routerbench").is_dir():
        sys.exit(f"data folder not found: {args.data / 'routerbench'}. Pass --data "
                 "with the folder that holds the RouterBench logs.")
    table, runs, elapsed = run(args)
    body = markdown(args, table, runs, elapsed)
    print(body)
    if args.write:
        write_section(args.write, "partial", body)
        print(f"wrote the partial-logs section of {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
