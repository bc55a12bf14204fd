"""Write a Markdown model card for a router bundle.

The card describes what a bundle was trained on and how it did on its validation
split, so that a reviewer can judge it without loading it. Everything comes from
the bundle's ``manifest.json``, plus the per-model validation quality in its
``validation_report.json``. The manifest does not record the command that built
the bundle (the price file, for one, leaves no trace there), so the caller passes
it::

    python -m training.card runs/routerbench runs/routerbench.md \\
        --command "router train --logs ../shared/data/routerbench --out runs/rb"
"""

import argparse
import math
import sys
from pathlib import Path

from router import _bundle
from router._choose import OperatingPoints
from router.errors import RouterError

# Quality targets of the operating-point table, as fractions of the most accurate
# model's validation quality. The bundle's default target is always added.
CARD_TARGETS = (0.8, 0.85, 0.9, 0.95, 0.98, 1.0)
REPORT_FILE = "validation_report.json"

# Manifest metric key, label, number kind and meaning, in card order.
_METRICS = (
    ("val_aiq", "AIQ", "percent",
     "mean quality of the router's cost-quality hull over the report's cost range"),
    ("val_apgr", "APGR", "number",
     ("mean share of the quality gap between the cheapest and the most accurate "
      "model that the router recovers, over the costs between theirs")),
    ("val_cpt50", "CPT(50%)", "percent",
     ("share of the cost gap between those two models spent to recover 50% of "
      "the quality gap")),
    ("val_cpt80", "CPT(80%)", "percent",
     "share of the cost gap spent to recover 80% of the quality gap"),
    ("val_cost_save", "cost save", "percent",
     "cost cut at the most accurate model's quality, against that model's cost"),
    ("val_cost_ratio", "cost ratio", "ratio",
     "times cheaper than the most accurate model at its quality"),
)
# Manifest metric key of each export check, and the file it checks.
_EXPORT_CHECKS = (
    ("onnx_max_diff", "head.onnx"),
    ("fused_max_diff", "pick.onnx"),
    ("numpy_max_diff", "token_scores.npy with NumPy"),
)


def write_card(bundle_dir, out_path, command: str) -> Path:
    """Render the card of a bundle and write it to ``out_path`` as Markdown.

    Parameters
    ----------
    bundle_dir : str or os.PathLike
        A directory that ``router train --out DIR`` wrote. Its files are checked
        against the manifest's checksums first.
    out_path : str or os.PathLike
        The Markdown file to write. Missing parent directories are created.
    command : str
        The command that built the bundle, shown so that a reader can rebuild it.

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    BundleError
        If ``bundle_dir`` is not a bundle, or a file differs from its checksum.
    ValueError
        If ``command`` is empty.

    Examples
    --------
    >>> write_card("runs/rb", "runs/rb.md",  # doctest: +SKIP
    ...            command="router train --logs logs/ --out runs/rb")
    PosixPath('runs/rb.md')
    """
    text = render_card(bundle_dir, command)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def render_card(bundle_dir, command: str) -> str:
    """Return the Markdown card of a bundle; see :func:`write_card`."""
    if not isinstance(command, str) or not command.strip():
        msg = (
            "command must be the non-empty command that built the bundle; got "
            f"{command!r}"
        )
        raise ValueError(msg)
    directory = Path(bundle_dir)
    manifest = _bundle.read_manifest(directory)
    report = _validation_report(directory, manifest)

    sections = [
        _header(directory, manifest),
        _data_section(manifest),
        _models_section(manifest, report),
        _router_section(manifest),
        _metrics_section(manifest),
        _operating_points_section(manifest),
        _files_section(directory, manifest),
        _command_section(command),
    ]
    return "\n\n".join(sections) + "\n"


def _validation_report(directory: Path, manifest: dict) -> dict | None:
    # A bundle from before the report was stored in it has none, and its card
    # lacks the per-model validation quality.
    if REPORT_FILE not in manifest.get("files", {}):
        return None
    return _bundle.load_json(directory, REPORT_FILE)


# Sections


def _header(directory: Path, manifest: dict) -> str:
    models = _bundle.require(manifest, "models")
    spec = _bundle.require(manifest, "operating_points")
    default = OperatingPoints(spec).for_quality(None, warn=False)
    reference = spec["reference_quality"]
    reference_cost = _reference_cost(manifest)

    provenance = (
        f"Bundle `{manifest.get('bundle_id', '?')}`, format "
        f"{manifest.get('format')} version {manifest.get('format_version')}, "
        f"created {manifest.get('created_at', '?')} by "
        f"{manifest.get('created_by', '?')} on Python {manifest.get('python', '?')}."
    )
    cost_share = ""
    if reference_cost:
        share = _percent(default["cost_usd"] / reference_cost)
        cost_share = f", {share} of that model's cost on validation"
    summary = (
        f"It routes each prompt to one of {len(models)} models. At its default "
        f"quality target of {spec['default_quality']:g}, the router reached "
        f"{_percent(default['quality'])} quality on validation, "
        f"{_percent(default['quality'] / reference)} of the "
        f"{_percent(reference)} of the most accurate model "
        f"({spec['reference_model']}), for {_usd(default['cost_usd'])} USD per "
        f"request{cost_share}."
    )
    title = f"# Router card: {directory.resolve().name}"
    return f"{title}\n\n{provenance}\n\n{summary}"


def _data_section(manifest: dict) -> str:
    data = _bundle.require(manifest, "data")
    files = data.get("files", [])
    lines = [
        "## Data",
        "",
        (
            f"{data.get('n_answers', 0):,} answers to {data.get('n_prompts', 0):,} "
            f"prompts, read from {len(files)} files:"
        ),
        "",
    ]
    listing = [
        f"- `{name}` ({kind})" for name, kind in zip(files, data.get("formats", []))
    ]
    if len(listing) > 10:
        lines += ["<details><summary>Show the files</summary>", "", *listing, "",
                  "</details>"]
    else:
        lines += listing

    lines.append("")
    training = manifest.get("training")
    if training:
        lines.append(
            f"- Split: {training.get('n_train', 0):,} prompts to fit and "
            f"{training.get('n_validation', 0):,} to validate, "
            f"{training.get('validation', '?')} held out with seed "
            f"{training.get('seed', '?')} ({training.get('split', '?')})."
        )
    policy = manifest.get("label_policy")
    if policy:
        lines.append(
            f"- Labels: the {policy.get('rule', '?')}, {policy.get('threshold', '?')}. "
            f"The {policy.get('n_unanswered', 0):,} prompts that no model answered "
            f"correctly are labelled {policy.get('unanswered', '?')}."
        )

    lines += ["", *_changes_lines(data.get("changes", {})), ""]
    lines.append(
        f"Data fingerprint: `{data.get('fingerprint', '?')}`. It is the SHA-256 of "
        "the cleaned (prompt_id, model, score, cost_usd) rows and the prompt texts, "
        "so a retrain on the same logs and prices gives the same value."
    )
    return "\n".join(lines)


def _changes_lines(changes: dict) -> list[str]:
    if not changes:
        return ["Reading the logs dropped or changed no answer and raised no warning."]
    plural = "s" if len(changes) != 1 else ""
    intro = (
        f"Reading the logs raised {len(changes)} LogDataWarning{plural}, one per "
        "reason. Each count is of answers, except `model_empty` (models) and "
        "`duplicate_merged` (rows removed); `training.collect` defines the reasons."
    )
    lines = [intro, "", "| reason | count |", "|---|---:|"]
    lines += [f"| `{reason}` | {count:,} |" for reason, count in changes.items()]
    return lines


def _models_section(manifest: dict, report: dict | None) -> str:
    models = _bundle.require(manifest, "models")
    spec = _bundle.require(manifest, "operating_points")
    default = OperatingPoints(spec).for_quality(None, warn=False)
    shares = default.get("shares") or [None] * len(models)
    validation = {}
    if report is not None:
        validation = {point["label"]: point for point in report.get("models", [])}

    intro = (
        "Cheapest first. Cost is the mean logged (or priced) cost per request. "
        "Accuracy is the mean score over all logged prompts, and validation "
        "quality the mean over the validation prompts only. Share is the part of "
        "the validation prompts that the router sends to the model at the default "
        "quality target."
    )
    header = (
        "| model | cost per request (USD) | accuracy, all logs "
        "| validation quality | share at default |"
    )
    lines = ["## Models", "", intro, "", header, "|---|---:|---:|---:|---:|"]
    for model, share in zip(models, shares):
        name = model["name"]
        label = name
        if name == spec.get("reference_model"):
            label += " (most accurate)"
        quality = validation.get(name, {}).get("quality")
        lines.append(
            f"| {_cell(label)} | {_usd(model['cost_usd'])} | "
            f"{_percent(model.get('accuracy'))} | {_percent(quality)} | "
            f"{_percent(share)} |"
        )
    if report is None:
        missing = (
            f"The bundle has no {REPORT_FILE}, so the validation quality of each "
            "model is unknown."
        )
        lines += ["", missing]
    return "\n".join(lines)


def _router_section(manifest: dict) -> str:
    featurizer = _bundle.require(manifest, "featurizer")
    head = _bundle.require(manifest, "head")
    metrics = manifest.get("metrics", {})

    details = [f"kind `{featurizer.get('kind', '?')}`"]
    if featurizer.get("dim"):
        details.append(f"{featurizer['dim']} dimensions")
    if featurizer.get("distilled_by"):
        details.append(f"distilled by {featurizer['distilled_by']}")
    if featurizer.get("pooling"):
        details.append(f"{featurizer['pooling']} pooling")
    head_chars = featurizer.get("head_chars", 0)
    tail_chars = featurizer.get("tail_chars", 0)
    lines = [
        "## Featurizer and head",
        "",
        (
            f"- Featurizer: {', '.join(details)}. A prompt longer than "
            f"{head_chars + tail_chars:,} characters keeps its first "
            f"{head_chars:,} and its last {tail_chars:,}."
        ),
    ]

    details = [
        f"kind `{head.get('kind', '?')}`",
        f"estimator `{head.get('estimator', '?')}`",
        f"file `{head.get('file', '?')}`",
        f"input `{head.get('input', '?')}`",
    ]
    if head.get("activation"):
        details.append(f"activation `{head['activation']}`")
    if head.get("opset"):
        details.append(f"ONNX opset {head['opset']}")
    lines.append(f"- Head: {', '.join(details)}.")

    checks = [
        f"{label} within {metrics[key]:.1e}"
        for key, label in _EXPORT_CHECKS
        if metrics.get(key) is not None
    ]
    if checks:
        lines.append(
            "- Export checks, the maximum difference from the trained head on the "
            f"validation prompts: {'; '.join(checks)}."
        )
    return "\n".join(lines)


def _metrics_section(manifest: dict) -> str:
    metrics = manifest.get("metrics", {})
    spec = _bundle.require(manifest, "operating_points")
    n_validation = manifest.get("training", {}).get("n_validation", "the")
    intro = (
        f"On the {n_validation} validation prompts; `docs/metrics.md` defines each "
        "metric. A dash means that the router never reaches the quality that "
        "defines the metric."
    )
    lines = ["## Validation metrics", "", intro, "",
             "| metric | value | meaning |", "|---|---:|---|"]
    for key, label, kind, meaning in _METRICS:
        lines.append(f"| {label} | {_metric(metrics.get(key), kind)} | {meaning} |")
    lines += [
        "",
        (
            f"- Most accurate model: {spec.get('reference_model', '?')}, "
            f"{_percent(metrics.get('val_best_quality'))} for "
            f"{_usd(metrics.get('val_best_cost'))} USD per request on the "
            "validation prompts."
        ),
        (
            "- Oracle, per prompt the cheapest model with the top score: "
            f"{_percent(metrics.get('val_oracle_quality'))} for "
            f"{_usd(metrics.get('val_oracle_cost'))} USD per request."
        ),
    ]
    return "\n".join(lines)


def _operating_points_section(manifest: dict) -> str:
    points = OperatingPoints(_bundle.require(manifest, "operating_points"))
    default = points.default_quality
    reference_cost = _reference_cost(manifest)
    weights = [point["cost_weight"] for point in points.points]

    intro = (
        f"The bundle stores {len(points.points)} operating points, with cost weights "
        f"from {min(weights):.3g} to {max(weights):.3g}. `pick(prompt, quality=q)` "
        "uses the cheapest point whose validation quality is at least q times the "
        f"most accurate model's {_percent(points.reference_quality)}. A target that "
        "no point reaches gets the highest-quality point and a "
        f"QualityNotReachedWarning. The default target is {default:g}."
    )
    header = (
        "| quality target | validation quality | of most accurate "
        "| cost per request (USD) | cost vs most accurate |"
    )
    lines = ["## Operating points", "", intro, "", header, "|---|---:|---:|---:|---:|"]
    for target in sorted({*CARD_TARGETS, default}):
        point = points.for_quality(target, warn=False)
        relative = point["quality"] / points.reference_quality
        label = f"{target:g}"
        if target == default:
            label += " (default)"
        # The same tolerance as OperatingPoints.for_quality.
        if relative < target - 1e-12:
            label += " (not reached)"
        cost_share = point["cost_usd"] / reference_cost if reference_cost else None
        lines.append(
            f"| {label} | {_percent(point['quality'])} | {_percent(relative)} | "
            f"{_usd(point['cost_usd'])} | {_percent(cost_share)} |"
        )
    return "\n".join(lines)


def _files_section(directory: Path, manifest: dict) -> str:
    files = _bundle.require(manifest, "files")
    manifest_bytes = (directory / _bundle.MANIFEST).stat().st_size
    total = manifest_bytes + sum(entry["bytes"] for entry in files.values())
    lines = [
        "## Files",
        "",
        "| file | size | sha256 |",
        "|---|---:|---|",
        f"| {_bundle.MANIFEST} | {_size(manifest_bytes)} | |",
    ]
    lines += [
        f"| {_cell(name)} | {_size(entry['bytes'])} | `{entry['sha256'][:16]}` |"
        for name, entry in files.items()
    ]
    lines += ["", f"Total: {_size(total)}."]
    return "\n".join(lines)


def _command_section(command: str) -> str:
    # A fence longer than any backtick run in the command keeps it one block.
    fence = "`" * max(3, _longest_backtick_run(command) + 1)
    lines = ["## Rebuild", "", "The command that built this bundle:", "",
             f"{fence}sh", command.strip(), fence]
    return "\n".join(lines)


# Formatting


def _reference_cost(manifest: dict) -> float | None:
    """Return the most accurate model's validation cost, else its logged mean."""
    cost = manifest.get("metrics", {}).get("val_best_cost")
    if cost is not None:
        return float(cost)
    reference = manifest.get("operating_points", {}).get("reference_model")
    for model in manifest.get("models", []):
        if model["name"] == reference:
            return float(model["cost_usd"])
    return None


def _percent(value) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{100 * value:.1f}%"


def _usd(value) -> str:
    """Format a USD amount in fixed point with four significant digits."""
    if value is None or not math.isfinite(value):
        return "-"
    if value == 0:
        return "0"
    decimals = max(2, 3 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def _metric(value, kind: str) -> str:
    if value is None or not math.isfinite(value):
        return "inf" if value == math.inf else "-"
    if kind == "percent":
        return _percent(value)
    if kind == "ratio":
        return f"{value:.2f}x"
    return f"{value:.3f}"


def _size(n_bytes: int) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def main(argv=None) -> int:
    """Run ``python -m training.card`` and return its exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m training.card",
        description="Write a Markdown model card for a router bundle.",
    )
    parser.add_argument("bundle", metavar="BUNDLE_DIR",
                        help="bundle directory that `router train --out` wrote")
    parser.add_argument("out", metavar="OUT.md", help="Markdown file to write")
    parser.add_argument("--command", required=True,
                        help="the command that built the bundle, quoted; the card "
                             "shows it so that a reader can rebuild the bundle")
    args = parser.parse_args(argv)
    try:
        path = write_card(args.bundle, args.out, args.command)
    except (RouterError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
