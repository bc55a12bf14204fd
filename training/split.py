"""Seeded train/validation splits grouped by prompt text.

Prompts with the same text always land on the same side, so no validation prompt
was seen in fitting. The validation part serves both for the metrics and for
calibrating the operating points.
"""

import hashlib

import numpy as np


def group_ids(prompts: list[str]) -> np.ndarray:
    """Return one integer group per prompt; equal texts share a group."""
    groups: dict[str, int] = {}
    out = np.empty(len(prompts), dtype=np.int64)
    for i, text in enumerate(prompts):
        key = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()
        out[i] = groups.setdefault(key, len(groups))
    return out


def train_validation_split(prompts: list[str], *, validation: float = 0.2,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(train_rows, validation_rows)``, sorted row indices.

    Raises
    ------
    ValueError
        If ``validation`` is not in (0, 1) or there are too few prompts to give
        each side at least one group.
    """
    if not 0.0 < validation < 1.0:
        msg = f"validation fraction must be between 0 and 1; got {validation!r}"
        raise ValueError(msg)
    groups = group_ids(prompts)
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    if n_groups < 2:
        msg = (
            f"need at least 2 distinct prompts to split into train and validation; "
            f"found {n_groups}"
        )
        raise ValueError(msg)
    order = np.random.default_rng(seed).permutation(n_groups)
    n_validation = min(max(1, round(n_groups * validation)), n_groups - 1)
    in_validation = np.zeros(n_groups, dtype=bool)
    in_validation[order[:n_validation]] = True
    rows = np.arange(len(prompts))
    return rows[~in_validation[groups]], rows[in_validation[groups]]


def grouped_folds(prompts: list[str], *, n_folds: int = 5,
                  seed: int = 0) -> list[np.ndarray]:
    """Return ``n_folds`` disjoint arrays of row indices covering every prompt."""
    groups = group_ids(prompts)
    n_groups = int(groups.max()) + 1
    if n_groups < n_folds:
        msg = f"need at least {n_folds} distinct prompts for {n_folds} folds; found {n_groups}"
        raise ValueError(msg)
    order = np.random.default_rng(seed).permutation(n_groups)
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    fold_of_group[order] = np.arange(n_groups) % n_folds
    rows = np.arange(len(prompts))
    return [rows[fold_of_group[groups] == k] for k in range(n_folds)]
