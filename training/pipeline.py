"""Train a router from logs: read, label, featurize, fit, calibrate, export, track."""

import hashlib
import json
import logging
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

import router
from router import _bundle
from router._choose import OperatingPoints, quality_scores
from training import calibrate, collect, embed, evaluate, export, fit, label, split, track
from training import recalibrate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; logged whole to MLflow."""

    logs: tuple  # log files or directories
    out: str  # bundle directory to write
    format: str = "auto"  # log format: auto, long, routerbench or routellm
    prices: str | None = None  # price file; overrides logged costs
    featurizer: str = "static"  # static (fast, default) or minilm
    embedder: str | None = None  # local sentence-transformers dir; None = MiniLM
    head: str = "correctness"  # correctness or cheapest
    estimator: str = "logreg"  # logreg or lightgbm
    threshold: float = 1.0  # score at or above which an answer counts as correct
    unanswered: str | None = None  # label when no model is correct; None = best
    quality: float = 0.95  # default quality target stored in the bundle
    validation: float = 0.2  # share of prompts held out for validation
    seed: int = 0  # seeds the split and the estimator
    cache_dir: str | None = None  # embedding cache; None = ~/.cache/learned-router
    tracking_uri: str | None = None  # MLflow store; None = sqlite:///mlflow.db
    experiment: str = track.DEFAULT_EXPERIMENT
    track: bool = True  # log the run to MLflow
    progress: bool = False  # progress bars on long steps
    estimator_params: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    bundle: Path
    metrics: dict
    report: object  # training.evaluate.Report on the validation split
    run_id: str | None
    timings: dict
    plot: Path | None = None  # validation cost-quality plot, beside the bundle


def train(logs, out, **options) -> TrainResult:
    """Train a router on logs and write its bundle to ``out``.

    Parameters
    ----------
    logs : path or list of paths
        Log files or directories; see :func:`training.collect.read_logs`.
    out : path
        The bundle directory to write. An existing bundle there is replaced only
        once the new one is complete.
    **options
        Any field of :class:`TrainConfig`.

    Returns
    -------
    TrainResult
        The bundle path, validation metrics, the validation report, the MLflow
        run id and the time of each step.

    Examples
    --------
    >>> from training import train
    >>> result = train("../shared/data/routerbench", "runs/routerbench")  # doctest: +SKIP
    >>> result.metrics["aiq"]  # doctest: +SKIP
    """
    paths = (logs,) if isinstance(logs, (str, Path)) else tuple(logs)
    config = TrainConfig(logs=tuple(str(p) for p in paths), out=str(out), **options)
    return run(config)


def run(config: TrainConfig) -> TrainResult:
    """Run the training pipeline for ``config``; see :func:`train`."""
    timings = {}
    clock = time.perf_counter()

    def lap(step):
        nonlocal clock
        now = time.perf_counter()
        timings[step] = round(now - clock, 3)
        clock = now

    # Read and label.
    logs = collect.read_logs(list(config.logs), format=config.format, prices=config.prices)
    table = label.build_table(logs.frame)
    labels = label.cheapest_correct(table, threshold=config.threshold,
                                    unanswered=config.unanswered)
    train_rows, val_rows = split.train_validation_split(
        table.prompts, validation=config.validation, seed=config.seed)
    logger.info("%d prompts, %d models: %d to fit, %d to validate",
                len(table.prompts), len(table.models), len(train_rows), len(val_rows))
    lap("read_and_label")

    # Featurize with the runtime's own code, then fit.
    featurizer = embed.make_featurizer(config.featurizer, embedder=config.embedder,
                                       cache_dir=config.cache_dir)
    lap("featurizer_setup")
    X = featurizer.transform(table.prompts, progress=config.progress)
    lap("featurize")
    return _fit_and_write(config, logs, table, labels, featurizer, X, train_rows,
                          val_rows, timings, lap)


def _fit_and_write(config, logs, table, labels, featurizer, X, train_rows, val_rows,
                   timings, lap, *, val_prompts=None, data=None) -> TrainResult:
    """Fit, calibrate, export and track: the steps after featurizing.

    :mod:`training.scale` shares them. Its table holds text hashes in place of
    prompts, so it passes the validation texts as ``val_prompts``, and ``data``
    replaces entries of the manifest's ``data`` that it computes itself.
    """
    head = fit.fit_head(
        config.head, config.estimator, X[train_rows], y=labels.y[train_rows],
        correct=labels.correct[train_rows], known=labels.known[train_rows],
        seed=config.seed, params=config.estimator_params)
    lap("fit")

    # Calibrate operating points and evaluate on the validation split.
    val = table.take(val_rows)
    if val_prompts is not None:
        val = replace(val, prompts=list(val_prompts))
    native = head.predict_outputs(X[val_rows])
    estimates = quality_scores(head.kind, native, head.classes, len(table.models))
    points = calibrate.operating_points(
        estimates, val.scores, val.costs, table.model_costs, table.models,
        default_quality=config.quality)
    report = _report(points, estimates, val, table.model_costs)
    metrics = _metrics(report, points, estimates, val, table.model_costs)
    lap("calibrate_and_evaluate")

    # Export, check against the native head, write the bundle.
    files, head_spec, checks = _export(head, featurizer, X[val_rows], native, val)
    metrics.update(checks)
    manifest = _manifest(config, logs, table, labels, featurizer, head_spec, points,
                         metrics, len(train_rows), len(val_rows))
    # The validation split lets `router calibrate` and `router reprice` compute
    # new operating points without retraining.
    files.update(recalibrate.validation_files(native, head.classes, val.scores,
                                              val.costs))
    manifest["data"].update(data or {})
    recalibrate.add_training_records(manifest, logs.frame)
    with tempfile.TemporaryDirectory() as scratch:
        report_json = Path(scratch) / "validation_report.json"
        report_json.write_text(report.to_json(indent=2), encoding="utf-8")
        files["validation_report.json"] = json.loads(report_json.read_text())
        bundle = export.write_bundle(Path(config.out), manifest, files)
        bundle_id = _bundle.read_manifest(bundle, verify=False)["bundle_id"]
        # The plot sits beside the bundle, not in it: a bundle holds ONNX, JSON
        # and .npy files only.
        plot = evaluate.plot_report(
            report, bundle.parent / f"{bundle.name}.validation_curve.png")
        lap("export")

        run_id = None
        if config.track:
            run_id = track.log_run(
                tracking_uri=config.tracking_uri, experiment=config.experiment,
                run_name=f"train {Path(config.out).name}",
                params=_flat_params(config), metrics=metrics,
                artifacts=[bundle, _copy(plot, Path(scratch) / "validation_curve.png")],
                tags={"bundle_id": bundle_id},
            )
            lap("mlflow")
    return TrainResult(bundle, metrics, report, run_id, timings, plot)


def _copy(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes())
    return target


def _report(points: dict, estimates, val, model_costs):
    weights = [p["cost_weight"] for p in points["points"]]
    choices = calibrate.sweep(estimates, model_costs, weights)
    labels = [f"λ={w:.3g}" for w in weights]
    return evaluate.evaluate_choices(val.scores, val.costs, list(val.models), choices,
                                     point_labels=labels)


def _metrics(report, points: dict, estimates, val, model_costs) -> dict:
    main = report.metrics[next(iter(report.metrics))]
    metrics = {f"val_{k}": v for k, v in asdict(main).items()}
    metrics["val_best_quality"] = report.best_quality
    metrics["val_best_cost"] = report.best_cost
    metrics["val_oracle_quality"] = report.oracle.quality
    metrics["val_oracle_cost"] = report.oracle.cost
    op = OperatingPoints(points)
    for q in (0.9, 0.95, 1.0):
        point = op.for_quality(q, warn=False)
        metrics[f"val_quality_at_q{q:g}"] = point["quality"]
        metrics[f"val_cost_at_q{q:g}"] = point["cost_usd"]
    return metrics


def _export(head, featurizer, X_val, native, val) -> tuple[dict, dict, dict]:
    dim = X_val.shape[1]
    files = dict(featurizer.files)
    onnx_head = export.head_to_onnx(head, dim)
    checks = {"onnx_max_diff": export.check_against_native(
        onnx_head, {"features": X_val}, native, "head.onnx")}
    files["head.onnx"] = onnx_head
    spec = {"kind": head.kind, "estimator": head.estimator, "file": "head.onnx",
            "input": "features", "classes": head.classes.tolist(),
            "opset": export.OPSET}

    if featurizer.kind == "static" and head.estimator == "logreg":
        table, bias = export.token_scores(head, featurizer.runtime.vectors)
        fused = export.fused_token_graph(head, table, bias)
        ids, counts = featurizer.runtime.token_feeds(val.prompts)
        checks["fused_max_diff"] = export.check_against_native(
            fused, {"token_ids": ids, "token_counts": counts}, native, "pick.onnx")
        files["pick.onnx"] = fused
        files["token_scores.npy"] = table
        spec.update(file="pick.onnx", input="token_ids", token_scores="token_scores.npy",
                    bias=bias.tolist(),
                    activation="softmax" if head.kind == "cheapest" else "sigmoid")
        # The token scores fold the vectors into the head, so the bundle needs
        # neither the vectors nor head.onnx: 3 MB instead of 17 MB.
        del files["static_vectors.npy"], files["head.onnx"]
        featurizer.spec.pop("vectors", None)
        checks["numpy_max_diff"] = _check_numpy_head(
            featurizer, table, bias, spec["activation"], val.prompts, native)
    if featurizer.kind == "minilm":
        from training.encoder import export_minilm

        with tempfile.TemporaryDirectory() as scratch:
            encoder_spec = export_minilm(featurizer.embedder, Path(scratch))
            for name in ("encoder", "tokenizer"):
                data = (Path(scratch) / encoder_spec[name]).read_bytes()
                files[encoder_spec[name]] = data
            featurizer.spec.update({k: v for k, v in encoder_spec.items()
                                    if k not in ("embedder",)})
    return files, spec, checks


def _check_numpy_head(featurizer, table, bias, activation, texts, native) -> float:
    from router._fused import FusedLinearHead

    fused = FusedLinearHead(featurizer.runtime, table, bias, activation)
    diff = float(np.max(np.abs(fused.scores_batch(texts) - native)))
    if diff > export.TOLERANCE:
        msg = (
            f"token_scores.npy: NumPy scores differ from the native model's by "
            f"{diff:.2e} (tolerance {export.TOLERANCE:.0e}); the export is wrong"
        )
        raise export.ExportMismatchError(msg)
    return diff


def _manifest(config, logs, table, labels, featurizer, head_spec, points, metrics,
              n_train, n_val) -> dict:
    accuracy = table.accuracy
    return {
        "format": _bundle.FORMAT,
        "format_version": _bundle.FORMAT_VERSION,
        "compatibility": (
            "A runtime reads every bundle whose format_version is at most its own and "
            "ignores fields it does not know; it rejects newer versions."
        ),
        "created_by": f"learned-router {router.__version__}",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "featurizer": featurizer.spec,
        "head": head_spec,
        "models": [
            {"name": m, "cost_usd": float(table.model_costs[j]),
             "accuracy": float(accuracy[j])}
            for j, m in enumerate(table.models)
        ],
        "label_policy": {
            "rule": "cheapest model whose score is at least the threshold",
            "threshold": labels.threshold,
            "unanswered": labels.unanswered,
            "n_unanswered": labels.n_unanswered,
            "cost": "mean logged cost per request, or the price file's",
        },
        "data": {
            "fingerprint": data_fingerprint(logs.frame),
            "files": [str(f) for f in logs.files],
            "formats": list(logs.format),
            "n_prompts": len(table.prompts),
            "n_answers": logs.frame.height,
            "changes": dict(logs.changes),
        },
        "training": {
            "n_train": n_train, "n_validation": n_val, "seed": config.seed,
            "validation": config.validation, "split": "seeded, grouped by prompt text",
            "estimator_params": config.estimator_params,
        },
        "metrics": metrics,
        "operating_points": points,
    }


def data_fingerprint(frame) -> str:
    """Return a SHA-256 over the log rows that training used, in a fixed order."""
    columns = ["prompt_id", "model", "score", "cost_usd"]
    ordered = frame.select(columns).sort(["prompt_id", "model"])
    digest = hashlib.sha256()
    digest.update(ordered.write_csv().encode("utf-8", "surrogatepass"))
    digest.update(b"\0")
    digest.update("\n".join(sorted(set(frame["prompt"].to_list())))
                  .encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _flat_params(config: TrainConfig) -> dict:
    params = asdict(config)
    params["logs"] = ",".join(config.logs)
    params["estimator_params"] = json.dumps(config.estimator_params, sort_keys=True)
    return params


def evaluate_bundle(bundle, logs, *, format: str = "auto", prices=None,
                    plot: str | Path | None = None, tracking_uri: str | None = None,
                    experiment: str = track.DEFAULT_EXPERIMENT):
    """Evaluate a bundle on labelled logs and return the report.

    Every stored operating point is replayed on the logs' prompts and compared
    with each single model, the random mix and the oracle. Logged models that the
    bundle does not route to are left out.

    Parameters
    ----------
    bundle : path
        A bundle directory.
    logs : path or list of paths
        Labelled logs, in any format :func:`training.collect.read_logs` reads.
    plot : path, optional
        Where to write the cost-quality plot (PNG).
    tracking_uri : str, optional
        When given, the report's metrics and files are logged as an MLflow run.

    Returns
    -------
    training.evaluate.Report
    """
    r = router.load(bundle)
    paths = [logs] if isinstance(logs, (str, Path)) else list(logs)
    read = collect.read_logs(paths, format=format, prices=prices)
    unknown = sorted(set(read.models) - set(r.models))
    if unknown:
        logger.warning("ignoring %d logged models the bundle does not route to: %s",
                       len(unknown), ", ".join(unknown))
    frame = read.frame.filter(read.frame["model"].is_in(list(r.models)))
    table = label.build_table(frame, models=r.models)
    estimates = r._score_texts(table.prompts)
    model_costs = np.array([r.costs[m] for m in r.models])
    points = r.manifest["operating_points"]
    report = _report(points, estimates, table, model_costs)
    if plot:
        evaluate.plot_report(report, Path(plot))
    if tracking_uri:
        main = report.metrics[next(iter(report.metrics))]
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "eval_report.json"
            path.write_text(report.to_json(indent=2), encoding="utf-8")
            artifacts = [path] + ([Path(plot)] if plot else [])
            track.log_run(tracking_uri=tracking_uri, experiment=experiment,
                          run_name=f"eval {Path(bundle).name}",
                          params={"bundle": str(bundle), "logs": ",".join(map(str, paths))},
                          metrics={f"eval_{k}": v for k, v in asdict(main).items()},
                          artifacts=artifacts, tags={"bundle_id": r.bundle_id})
    return report
