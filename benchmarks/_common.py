"""Helpers the benchmark scripts share: folds, the machine line, report sections.

The scripts run as ``python benchmarks/<name>.py``, which puts this folder on
``sys.path``, so they import this module as ``_common``.
"""

import os
import platform
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Share of each fold's training part that calibrates the operating points, as
# in the training pipeline.
CALIBRATION_SHARE = 0.2


@dataclass
class Fold:
    """Row indices of one fold: fit and calibrate on the training part, test."""

    fit: np.ndarray
    calibrate: np.ndarray
    test: np.ndarray


def make_folds(prompts: list[str], n_folds: int, seed: int) -> list[Fold]:
    """Return grouped outer folds, each with the pipeline's inner split."""
    from training import split

    outer = split.grouped_folds(prompts, n_folds=n_folds, seed=seed)
    folds = []
    for k, test in enumerate(outer):
        train = np.sort(np.concatenate([f for j, f in enumerate(outer) if j != k]))
        inner_fit, inner_calibrate = split.train_validation_split(
            [prompts[i] for i in train], validation=CALIBRATION_SHARE, seed=seed)
        folds.append(Fold(train[inner_fit], train[inner_calibrate], test))
    return folds


def machine(versions: dict[str, str]) -> str:
    """Describe the CPU, the core count, Python and the given library versions."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = found.group(1).strip() if found else cpu
    libraries = "".join(f", {name} {version}" for name, version in versions.items())
    return (f"{cpu}, {os.cpu_count()} cores, no GPU; Python "
            f"{platform.python_version()}{libraries}")


def write_section(path: Path, name: str, body: str, heading: str = "") -> None:
    """Replace the ``name`` section of the Markdown file ``path``, or append it.

    A section is the text between ``<!-- name:start -->`` and
    ``<!-- name:end -->``. An appended one is preceded by ``heading``, if given.
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        title = f"## {heading}\n\n" if heading else ""
        text = text.rstrip() + "\n\n" + title + section + "\n"
    path.write_text(text, encoding="utf-8")


def train_bundle(logs: Path, directory: Path) -> Path:
    """Train a router on ``logs`` with the defaults, untracked, into ``directory``."""
    import training

    print(f"training a bundle on {logs} (track=False) ...", flush=True)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        bundle = training.train(logs, directory / "router", track=False).bundle
    for warning in record:
        print(f"  training warning: {warning.category.__name__}: {warning.message}")
    print(f"  trained in {time.perf_counter() - start:.1f} s")
    return bundle
