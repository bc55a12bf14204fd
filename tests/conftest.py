"""Fixtures shared by the runtime, pipeline and end-to-end tests."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

requires_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "routerbench").is_dir(),
    reason=f"real logs not found at {SHARED_DATA} (expected ../shared/data beside "
    "the repository)",
)

# Three models with distinct strengths, so a router has something to learn: the
# cheap one answers arithmetic, the middle one code, the expensive one everything.
SMALL_MODELS = {"cheap-model": 0.0001, "mid-model": 0.001, "big-model": 0.01}


def small_log_rows(n_per_topic: int = 20) -> list[dict]:
    """Return long-format log rows for three topics and three models."""
    rows = []
    topics = {
        "math": ("What is {i} plus {j}? Give only the number.", {"cheap-model"}),
        "code": ("Write a python function that returns the {i}th item of a list "
                 "of {j} items.", {"mid-model"}),
        "essay": ("Write a careful essay on the history of bridge number {i} "
                  "and its {j} arches.", set()),
    }
    for topic, (template, strong_for) in topics.items():
        for k in range(n_per_topic):
            prompt = template.format(i=k + 2, j=3 * k + 1)
            for model, cost in SMALL_MODELS.items():
                correct = model == "big-model" or model in strong_for
                rows.append({"prompt": prompt, "model": model,
                             "score": 1.0 if correct else 0.0, "cost_usd": cost,
                             "task": topic})
    return rows


@pytest.fixture(scope="session")
def small_logs(tmp_path_factory) -> Path:
    """A long-format CSV log of 60 prompts answered by 3 models."""
    import csv

    path = tmp_path_factory.mktemp("logs") / "small.csv"
    rows = small_log_rows()
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def small_bundle(small_logs, tmp_path_factory) -> Path:
    """A bundle trained on :func:`small_logs` with the default settings."""
    import training

    out = tmp_path_factory.mktemp("bundles") / "small"
    return training.train(small_logs, out, track=False).bundle
