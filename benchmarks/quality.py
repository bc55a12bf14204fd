"""Compare routers by cross-validation on the RouterBench and RouteLLM MMLU logs.

Every router is fitted and scored on the same seeded folds, grouped by prompt
text (:func:`training.split.grouped_folds`). Within each fold, the training part
is split again as :func:`training.train` splits its logs: the head is fitted on
80% of it and the operating points are calibrated on the other 20%, grouped and
seeded the same way. The head is not refitted on the whole training part,
because a bundle ships the head that its operating points were calibrated
with, and the benchmark measures what a bundle would do.

The folds calibrate different operating points, so the held-out choices are
pooled by quality target: for each ``q`` of :data:`QUALITY_TARGETS`, each fold
routes its held-out prompts with the point that
:meth:`router._choose.OperatingPoints.for_quality` returns for ``q``. Each
prompt thus gets exactly one held-out choice per target, and the pooled curve
is what ``pick(prompt, quality=q)`` would deliver. The calibration gap at ``q``
is the pooled held-out quality relative to the most accurate single model,
minus ``q``.

Run from the repository root::

    python benchmarks/quality.py --write BENCHMARKS.md
"""

import argparse
import logging
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# A checkout need not be installed: the repository root contains both packages.
sys.path.insert(0, str(ROOT))

from _common import (  # noqa: E402
    CALIBRATION_SHARE,
    Fold,
    machine,
    make_folds,
    write_section,
)

from router._choose import OperatingPoints, quality_scores  # noqa: E402
from training import calibrate, collect, distill, embed, evaluate, fit, label  # noqa: E402

DATASETS = {
    "routerbench": {"folder": "routerbench", "prices": None},
    "routellm": {
        "folder": "routellm-mmlu",
        "prices": ROOT / "examples" / "routellm-mmlu-prices.json",
    },
}
TITLES = {"routerbench": "RouterBench", "routellm": "RouteLLM MMLU"}

# Quality targets, as fractions of the most accurate single model's quality, that
# define the pooled curve. Targets above 1 reach the points that beat that model.
QUALITY_TARGETS = np.round(np.arange(0.50, 1.1001, 0.01), 2)
REPORTED_TARGETS = (0.9, 0.95, 1.0)

# Held-out fraction of each fold's training part used for calibration, as in
# training.pipeline.TrainConfig.validation.

# The reference of the two cost targets: its quality at a third of its cost, and
# 95% of its quality at a fifteenth of its cost.
REFERENCE_MODEL = "gpt-4-1106-preview"
COST_TARGETS = ((1.0, 3.0), (0.95, 15.0))

# LightGBM threads. The folds are small, so thread overhead outweighs the gain.
# With deterministic=True, one thread grew the same trees as two on RouterBench.
LIGHTGBM_PARAMS = {"n_jobs": 1}

KNN_NEIGHBORS = 40
TFIDF_C = 1.0



@dataclass(frozen=True)
class RouterSpec:
    """One router of the comparison: features, head and estimator."""

    name: str
    features: str  # "static", "minilm" or "tfidf"
    head: str  # "correctness", "cheapest" or "knn"
    estimator: str | None = None  # "logreg" or "lightgbm" for the fitted heads
    params: dict = field(default_factory=dict)  # overrides of make_estimator
    deployable: bool = True  # False when it needs data that pick does not have


DEFAULT_ROUTER = RouterSpec("static · correctness · logreg", "static", "correctness",
                            "logreg")


def router_specs(*, minilm: bool) -> list[RouterSpec]:
    """Return the routers to compare, the pipeline's default first."""
    specs = [
        DEFAULT_ROUTER,
        RouterSpec("static · correctness · lightgbm", "static", "correctness",
                   "lightgbm", LIGHTGBM_PARAMS),
        RouterSpec("static · cheapest · logreg", "static", "cheapest", "logreg"),
        RouterSpec("static · cheapest · lightgbm", "static", "cheapest", "lightgbm",
                   LIGHTGBM_PARAMS),
    ]
    if minilm:
        specs += [
            RouterSpec("minilm · correctness · logreg", "minilm", "correctness",
                       "logreg"),
            RouterSpec("minilm · correctness · lightgbm", "minilm", "correctness",
                       "lightgbm", LIGHTGBM_PARAMS),
            RouterSpec("minilm · cheapest · logreg", "minilm", "cheapest", "logreg"),
        ]
    knn_features = "minilm" if minilm else "static"
    specs += [
        RouterSpec(f"baseline: kNN (k={KNN_NEIGHBORS}, {knn_features})",
                   knn_features, "knn"),
        RouterSpec("baseline: TF-IDF · correctness · logreg", "tfidf", "correctness",
                   "logreg"),
        # The logged task (ARC, MBPP or Winogrande, or the MMLU subject) is unknown
        # at pick time. This row shows how much of the routing the task explains.
        RouterSpec("reference: task one-hot · correctness · logreg", "task",
                   "correctness", "logreg", {"C": 1.0}, deployable=False),
    ]
    return specs


@dataclass
class Dataset:
    """A dataset's table and the feature matrices of its prompts."""

    name: str
    table: label.Table
    features: dict  # "static", "minilm", "task" -> ndarray; "tfidf" -> the texts
    changes: dict  # counts of dropped or changed answers from read_logs


def load_dataset(name: str, data: Path, *, minilm: bool) -> Dataset:
    """Read a dataset and featurize its prompts with the pipeline's featurizers."""
    entry = DATASETS[name]
    with warnings.catch_warnings():
        # The cleaning counts are reported in the output instead.
        warnings.simplefilter("ignore", collect.LogDataWarning)
        logs = collect.read_logs(data / entry["folder"], prices=entry["prices"])
    table = label.build_table(logs.frame)
    tasks = sorted({str(t) for t in table.tasks})
    task_of = np.array([tasks.index(str(t)) for t in table.tasks])
    features = {"tfidf": table.prompts,
                "task": np.eye(len(tasks), dtype=np.float32)[task_of]}
    features["static"] = embed.make_featurizer("static").transform(table.prompts)
    if minilm:
        minilm_featurizer = embed.make_featurizer("minilm")
        features["minilm"] = minilm_featurizer.transform(table.prompts, progress=True)
    return Dataset(name, table, features, dict(logs.changes))


def estimate(spec: RouterSpec, dataset: Dataset, fit_rows: np.ndarray,
             predict_rows: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Fit ``spec`` on ``fit_rows`` and return its quality estimates per row set.

    Each estimate is ``(len(rows), n_models)``, in the sense of
    :func:`router._choose.quality_scores`.
    """
    table = dataset.table
    labels = label.cheapest_correct(table.take(fit_rows))
    n_models = len(table.models)
    if spec.head == "knn":
        return _knn_estimates(dataset.features[spec.features], labels, fit_rows,
                              predict_rows)
    if spec.features == "tfidf":
        return _tfidf_estimates(dataset.features["tfidf"], labels, fit_rows,
                                predict_rows, seed)

    X = dataset.features[spec.features]
    head = fit.fit_head(spec.head, spec.estimator, X[fit_rows], y=labels.y,
                        correct=labels.correct, known=labels.known, seed=seed,
                        params=spec.params)
    return [quality_scores(head.kind, head.predict_outputs(X[rows]), head.classes,
                           n_models)
            for rows in predict_rows]


def _knn_estimates(X: np.ndarray, labels: label.Labels, fit_rows: np.ndarray,
                   predict_rows: list[np.ndarray]) -> list[np.ndarray]:
    # RouterBench's kNN router: P(correct) of a model is its mean correctness on
    # the nearest training prompts by cosine distance.
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=KNN_NEIGHBORS, metric="cosine")
    index.fit(X[fit_rows])
    prior = labels.correct.sum(axis=0) / np.maximum(labels.known.sum(axis=0), 1)
    out = []
    for rows in predict_rows:
        _, neighbors = index.kneighbors(X[rows])
        correct = labels.correct[neighbors].sum(axis=1)
        known = labels.known[neighbors].sum(axis=1)
        share = correct / np.maximum(known, 1)
        out.append(np.where(known > 0, share, prior).astype(np.float32))
    return out


def _tfidf_estimates(texts: list[str], labels: label.Labels, fit_rows: np.ndarray,
                     predict_rows: list[np.ndarray], seed: int) -> list[np.ndarray]:
    # One logistic regression per model on sparse TF-IDF features, as the
    # correctness head does on dense ones.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)
    X_fit = vectorizer.fit_transform([texts[i] for i in fit_rows])
    X_predict = [vectorizer.transform([texts[i] for i in rows]) for rows in predict_rows]
    out = [np.empty((len(rows), labels.correct.shape[1]), dtype=np.float32)
           for rows in predict_rows]
    for j in range(labels.correct.shape[1]):
        known = labels.known[:, j]
        target = labels.correct[known, j]
        if target.all() or not target.any():
            for estimates in out:
                estimates[:, j] = float(target.mean()) if target.size else 0.5
            continue
        model = LogisticRegression(C=TFIDF_C, max_iter=2000, random_state=seed)
        model.fit(X_fit[known], target)
        for estimates, X in zip(out, X_predict):
            estimates[:, j] = model.predict_proba(X)[:, 1]
    return out


def cross_validate(spec: RouterSpec, dataset: Dataset, folds: list[Fold],
                   seed: int) -> np.ndarray:
    """Return the pooled held-out choices of ``spec``, ``(n_targets, n_prompts)``."""
    table = dataset.table
    choices = np.zeros((len(QUALITY_TARGETS), len(table.prompts)), dtype=np.intp)
    for fold in folds:
        cal_estimates, test_estimates = estimate(
            spec, dataset, fold.fit, [fold.calibrate, fold.test], seed)
        train = np.concatenate([fold.fit, fold.calibrate])
        model_costs = np.nanmean(table.costs[train], axis=0)
        cal = table.take(fold.calibrate)
        points = OperatingPoints(calibrate.operating_points(
            cal_estimates, cal.scores, cal.costs, model_costs, table.models,
            default_quality=0.95))
        weights = [points.for_quality(float(q), warn=False)["cost_weight"]
                   for q in QUALITY_TARGETS]
        choices[:, fold.test] = calibrate.sweep(test_estimates, model_costs, weights)
    return choices


def run_dataset(dataset: Dataset, specs: list[RouterSpec], n_folds: int,
                seed: int) -> evaluate.Report:
    """Cross-validate every router on ``dataset`` and evaluate the pooled choices."""
    folds = make_folds(dataset.table.prompts, n_folds, seed)
    choices = {}
    for spec in specs:
        started = time.perf_counter()
        choices[spec.name] = cross_validate(spec, dataset, folds, seed)
        print(f"  {dataset.name}: {spec.name} in {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)
    table = dataset.table
    main = choices.pop(DEFAULT_ROUTER.name)
    return evaluate.evaluate_choices(
        table.scores, table.costs, list(table.models), main,
        point_labels=[f"q={q:.2f}" for q in QUALITY_TARGETS], extra_routers=choices)


# ------------------------------------------------------------------- output


def _key(spec: RouterSpec) -> str:
    # run_dataset passes the default router as evaluate_choices' main router,
    # which the report files under ROUTER_NAME.
    return evaluate.ROUTER_NAME if spec.name == DEFAULT_ROUTER.name else spec.name


def _curve(report: evaluate.Report, spec: RouterSpec) -> list[evaluate.CurvePoint]:
    return report.curves[_key(spec)]


def _metrics(report: evaluate.Report, spec: RouterSpec) -> evaluate.RouterMetrics:
    return report.metrics[_key(spec)]


def _label(spec: RouterSpec) -> str:
    return f"{spec.name} (default)" if spec == DEFAULT_ROUTER else spec.name


def _percent(value, decimals: int = 1) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{100 * value:.{decimals}f}"


def _usd(value) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.6f}"


def _ratio(value) -> str:
    if value is None:
        return "–"
    if value == np.inf:
        return "inf"
    return f"{value:.2f}×"


def _markdown(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def metrics_table(report: evaluate.Report, specs: list[RouterSpec]) -> list[str]:
    """Return the curve metrics of every router and the random mix as Markdown."""
    headers = ["router", "AIQ", "APGR", "CPT(50%)", "CPT(80%)", "CostSave",
               "cost ratio", "max quality %"]
    named = [(_label(s), _metrics(report, s), _curve(report, s)) for s in specs]
    named.append((f"baseline: random mix ({report.cheapest_model} to "
                  f"{report.best_model})", report.random_mix_metrics,
                  report.random_mix))
    rows = []
    for name, m, points in named:
        apgr = "–" if m.apgr is None else f"{m.apgr:.3f}"
        best = max(p.quality for p in points)
        rows.append([name, _percent(m.aiq, 2), apgr, _percent(m.cpt50),
                     _percent(m.cpt80), _percent(m.cost_save), _ratio(m.cost_ratio),
                     _percent(best)])
    return _markdown(headers, rows)


def targets_table(report: evaluate.Report, specs: list[RouterSpec]) -> list[str]:
    """Return quality, cost and calibration gap at the reported targets."""
    headers = ["router"]
    for q in REPORTED_TARGETS:
        headers += [f"q={q:g} quality %", "cost USD", "gap pp"]
    rows = []
    for spec in specs:
        curve = _curve(report, spec)
        row = [_label(spec)]
        for q in REPORTED_TARGETS:
            point = curve[int(np.flatnonzero(np.isclose(QUALITY_TARGETS, q))[0])]
            gap = point.quality / report.best_quality - q
            row += [_percent(point.quality), _usd(point.cost), f"{100 * gap:+.1f}"]
        rows.append(row)
    return _markdown(headers, rows)


def reference_rows(report: evaluate.Report) -> list[str]:
    """Return the single models and the oracle as Markdown."""
    rows = [[p.label, _percent(p.quality), _usd(p.cost)] for p in report.models]
    rows.append(["oracle (cheapest correct model per prompt)",
                 _percent(report.oracle.quality), _usd(report.oracle.cost)])
    return _markdown(["single model", "quality %", "cost USD"], rows)


def min_cost_ratio(points: list[evaluate.CurvePoint], quality: float,
                   reference: evaluate.CurvePoint) -> float | None:
    """Return the reference's cost over the minimum hull cost reaching ``quality``."""
    hull = evaluate.upper_hull([p.cost for p in points], [p.quality for p in points])
    return evaluate.cost_ratio_at_quality(hull, quality, reference.cost)


def cost_targets(report: evaluate.Report, specs: list[RouterSpec]) -> list[str]:
    """Return the minimum hull cost reaching each cost target, as Markdown."""
    reference = report.models[report.model_names.index(REFERENCE_MODEL)]
    headers = ["router"]
    for share, divisor in COST_TARGETS:
        headers += [f"min cost at {share:.0%} of {REFERENCE_MODEL}",
                    f"{REFERENCE_MODEL} cost / that", f"meets cost / {divisor:g}"]

    curves = [(_label(s), _curve(report, s)) for s in specs]
    curves.append(("baseline: random mix", report.random_mix))
    curves.append(("oracle", [report.oracle]))
    rows = []
    for name, points in curves:
        row = [name]
        for share, divisor in COST_TARGETS:
            ratio = min_cost_ratio(points, share * reference.quality, reference)
            cost = None if ratio is None else reference.cost / ratio
            meets = ratio is not None and ratio >= divisor
            row += [_usd(cost), _ratio(ratio), "yes" if meets else "no"]
        rows.append(row)

    lines = [
        f"{REFERENCE_MODEL} on these held-out prompts: quality "
        f"{_percent(reference.quality)}%, cost {_usd(reference.cost)} USD per "
        f"request, so cost / 3 = {_usd(reference.cost / 3)} and cost / 15 = "
        f"{_usd(reference.cost / 15)}. The minimum cost is read off each "
        "router's non-decreasing hull. A cost between two operating points is "
        "reached by sending each prompt at random to one of them. '–' means "
        "never reached.",
        "",
    ]
    return lines + _markdown(headers, rows) + ["", *standing(report, specs)]


def standing(report: evaluate.Report, specs: list[RouterSpec]) -> list[str]:
    """Return one sentence per cost target on the default and the best router."""
    reference = report.models[report.model_names.index(REFERENCE_MODEL)]
    sentences = []
    for share, divisor in COST_TARGETS:
        ratios = {s.name: min_cost_ratio(_curve(report, s), share * reference.quality,
                                         reference) for s in specs if s.deployable}
        default = ratios[DEFAULT_ROUTER.name]
        best_name = max(ratios, key=lambda n: ratios[n] or 0.0)
        target = f"{share:.0%} of {REFERENCE_MODEL}'s quality at 1/{divisor:g} of its cost"
        if default is None:
            verdict = "the default router never reaches that quality"
        else:
            verdict = f"the default router reaches it at 1/{default:.2f} of the cost"
        if ratios[best_name] is None:
            best = "no deployable router compared here reaches that quality"
        else:
            best = (f"the best deployable router here, {best_name}, at 1/"
                    f"{ratios[best_name]:.2f}")
        sentences.append(f"- {target}: {verdict}, and {best}.")
    return sentences


def dataset_section(dataset: Dataset, report: evaluate.Report,
                    specs: list[RouterSpec]) -> list[str]:
    """Return the Markdown of one dataset: counts, tables and the plot path."""
    table = dataset.table
    missing = int(np.isnan(table.scores).sum())
    changes = ", ".join(f"{k} {v}" for k, v in sorted(dataset.changes.items()))
    low, high = report.cost_range
    lines = [
        f"### {TITLES[dataset.name]}",
        "",
        f"{len(table.prompts)} prompts, {len(table.models)} models; "
        f"{missing} (prompt, model) scores missing; read_logs changes: "
        f"{changes or 'none'}. AIQ averages over costs {_usd(low)} to {_usd(high)} "
        f"USD per request. Strong model {report.strong}, weak {report.weak}.",
        "",
        *metrics_table(report, specs),
        "",
        "Quality, cost and calibration gap at quality targets q (gap: held-out "
        f"quality / {report.best_model}'s held-out quality − q, in percentage "
        "points):",
        "",
        *targets_table(report, specs),
        "",
        *reference_rows(report),
        "",
    ]
    if REFERENCE_MODEL in report.model_names:
        lines += ["Cost targets:", "", *cost_targets(report, specs), ""]
    return lines


def _machine() -> str:
    import lightgbm
    import sklearn

    return machine({"scikit-learn": sklearn.__version__,
                    "LightGBM": lightgbm.__version__})


def method_notes(n_folds: int, seed: int) -> list[str]:
    """Describe the protocol and the defaults in force, as Markdown paragraphs."""
    logreg = fit.make_estimator("logreg", seed, n_classes=2)[-1]
    lightgbm = fit.make_estimator("lightgbm", seed, n_classes=2)
    head_chars, tail_chars = embed.CLIP["static"]
    return [
        f"Method: {n_folds}-fold cross-validation over prompts, grouped by prompt "
        f"text, seed {seed}. In each fold the head is fitted on "
        f"{1 - CALIBRATION_SHARE:.0%} of the training part and its operating "
        f"points are calibrated on the other {CALIBRATION_SHARE:.0%} (grouped and "
        "seeded), as `training.train` does. The head is not refitted. Each fold "
        "routes its held-out prompts at the operating point that "
        "`OperatingPoints.for_quality(q)` returns for q = "
        f"{QUALITY_TARGETS[0]:.2f}, {QUALITY_TARGETS[1]:.2f}, …, "
        f"{QUALITY_TARGETS[-1]:.2f}. The held-out choices of the folds are pooled "
        "into one curve per router, so every prompt counts once per q. A point "
        "averages over the prompts whose chosen answer was logged.",
        "",
        "Metrics follow `docs/metrics.md`. CostSave and cost ratio are taken at "
        "the most accurate single model's held-out quality, '–' where the hull "
        "never reaches it. Max quality is the best pooled point of the curve. "
        f"kNN predicts a model's correctness as its mean over the {KNN_NEIGHBORS} "
        "nearest training prompts by cosine distance. TF-IDF uses word 1-2-grams, "
        f"sublinear tf and min_df 2, with one logistic regression (C = {TFIDF_C:g}) "
        "per model. Both baselines use the same operating-point family and "
        "calibration as the pipeline's heads.",
        "",
        f"Defaults in force: logistic regression C = {logreg.C:g}, LightGBM "
        f"{lightgbm.n_estimators} trees with learning rate "
        f"{lightgbm.learning_rate:g} and {lightgbm.num_leaves} leaves, static clip "
        f"windows of {head_chars} + {tail_chars} characters, "
        f"{distill.DEFAULT_DIMS} PCA dimensions and {len(calibrate.COST_WEIGHTS)} "
        "cost weights.",
        "",
    ]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare routers by grouped cross-validation on logged traffic.")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder with routerbench/ and routellm-mmlu/ "
                             "(default: %(default)s)")
    parser.add_argument("--folds", type=int, default=5,
                        help="number of cross-validation folds (default: 5)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the folds, the inner split and the estimators")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS),
                        default=list(DATASETS), help="datasets to run (default: all)")
    parser.add_argument("--skip-minilm", action="store_true",
                        help="leave out the MiniLM routers; kNN then uses static "
                             "features")
    parser.add_argument("--write", type=Path, metavar="MARKDOWN",
                        help="replace the quality section of this Markdown file, "
                             "such as BENCHMARKS.md")
    parser.add_argument("--plots", type=Path, default=ROOT / "benchmarks" / "out",
                        help="folder for the cost-quality PNGs (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error(f"--folds must be at least 2; got {args.folds}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    missing = [DATASETS[n]["folder"] for n in args.datasets
               if not (args.data / DATASETS[n]["folder"]).is_dir()]
    if missing:
        sys.exit(f"data folder not found: {args.data} has no {', '.join(missing)}. "
                 "Pass --data with the folder that holds the RouterBench and "
                 "RouteLLM MMLU logs.")
    # evaluate_choices warns once per curve that a few RouterBench answers are not
    # logged; the tables' notes give that count once per dataset.
    logging.getLogger("training.evaluate").setLevel(logging.ERROR)
    started = time.perf_counter()
    specs = router_specs(minilm=not args.skip_minilm)
    args.plots.mkdir(parents=True, exist_ok=True)

    sections = []
    for name in args.datasets:
        dataset = load_dataset(name, args.data, minilm=not args.skip_minilm)
        report = run_dataset(dataset, specs, args.folds, args.seed)
        evaluate.plot_report(report, args.plots / f"quality_{name}.png")
        sections += dataset_section(dataset, report, specs)

    elapsed = time.perf_counter() - started
    plots = args.plots.resolve()
    plots = plots.relative_to(ROOT) if plots.is_relative_to(ROOT) else plots
    command = "python " + shlex.join(sys.argv if argv is None else ["quality.py", *argv])
    header = [
        "## Routing quality by cross-validation",
        "",
        f"Command: `{command}` (from the repository root), run on "
        f"{date.today().isoformat()} in {elapsed / 60:.1f} minutes on "
        f"{_machine()}. Plots: `{plots}/quality_<dataset>.png`.",
        "",
        *method_notes(args.folds, args.seed),
    ]
    body = "\n".join(header + sections)
    print(body)
    if args.write:
        write_section(args.write, "quality", body)
        print(f"wrote the quality section of {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
