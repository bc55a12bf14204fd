"""Fit the router's head on prompt features.

Two heads, each with a scikit-learn or a LightGBM estimator:

``correctness``
    One binary classifier per model predicting whether that model answers a
    prompt correctly, fitted only on the prompts the model has an answer for, so
    logs in which each prompt went to some models only still train.
``cheapest``
    One multiclass classifier predicting the cheapest model that answers the
    prompt correctly (the label of :mod:`training.label`).

Features are float32, as ONNX computes them, so the exported model sees the same
numbers the native one was fitted on.
"""

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)

HEADS = ("correctness", "cheapest")
ESTIMATORS = ("logreg", "lightgbm")

# Probability used for a model whose logged answers are all right or all wrong;
# kept off 0 and 1 so its logit stays finite in the exported graph.
_CONSTANT_EPS = 1e-4


@dataclass
class Head:
    """A fitted head. ``outputs`` follows ``classes`` (cheapest) or the models."""

    kind: str
    estimator: str
    n_models: int
    classes: np.ndarray  # cheapest: model index of each output column
    members: list = field(default_factory=list)  # native estimators, or floats
    seed: int = 0
    dim: int = 0  # number of features it was fitted on

    def predict_outputs(self, X: np.ndarray) -> np.ndarray:
        """Return the native model's outputs for float32 features ``X``."""
        X = np.asarray(X, dtype=np.float32)
        if self.kind == "cheapest":
            return self.members[0].predict_proba(X).astype(np.float32)
        columns = []
        for member in self.members:
            if isinstance(member, float):
                columns.append(np.full(len(X), member, dtype=np.float32))
            else:
                columns.append(member.predict_proba(X)[:, 1].astype(np.float32))
        return np.stack(columns, axis=1)

    def linear_parts(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(W, b)`` with ``logits = X @ W.T + b`` for a logistic head.

        The standard scaler is folded into ``W`` and ``b``. Softmax of the logits
        gives the cheapest head's outputs, the sigmoid the correctness head's.
        """
        if self.estimator != "logreg":
            msg = f"the {self.estimator} head is not linear"
            raise ValueError(msg)
        if self.kind == "cheapest":
            return _fold_scaler(self.members[0])
        rows, biases = [], []
        dim = self._dim()
        for member in self.members:
            if isinstance(member, float):
                rows.append(np.zeros(dim))
                biases.append(np.log(member / (1.0 - member)))
            else:
                weights, bias = _fold_scaler(member)
                rows.append(weights[-1])
                biases.append(bias[-1])
        return np.asarray(rows), np.asarray(biases)

    def _dim(self) -> int:
        if self.dim:
            return self.dim
        for member in self.members:
            if not isinstance(member, float):
                return member.n_features_in_
        msg = "every correctness member is constant; the head has no features"
        raise ValueError(msg)


def fit_head(kind: str, estimator: str, X: np.ndarray, *, y: np.ndarray,
             correct: np.ndarray, known: np.ndarray, seed: int = 0,
             params: dict | None = None) -> Head:
    """Fit a head of ``kind`` with ``estimator`` on features ``X``.

    Parameters
    ----------
    kind : {"correctness", "cheapest"}
    estimator : {"logreg", "lightgbm"}
    X : ndarray of shape (n_prompts, dim)
    y : ndarray of shape (n_prompts,)
        Cheapest-correct model index per prompt (used by ``cheapest``).
    correct, known : ndarray of shape (n_prompts, n_models)
        Whether each model answered correctly, and whether it answered at all
        (used by ``correctness``).
    seed : int
        Seeds the estimator, so the same data and seed give the same head.
    params : dict, optional
        Estimator parameters overriding the defaults of :func:`make_estimator`.
    """
    if kind not in HEADS:
        msg = f"unknown head {kind!r}; choose one of {list(HEADS)}"
        raise ValueError(msg)
    if estimator not in ESTIMATORS:
        msg = f"unknown estimator {estimator!r}; choose one of {list(ESTIMATORS)}"
        raise ValueError(msg)
    X = np.ascontiguousarray(X, dtype=np.float32)
    from threadpoolctl import threadpool_limits

    # The logistic solver makes many small BLAS calls. Multithreaded BLAS spends
    # more on waking its threads than it saves, and on 2 busy cores a fit took
    # 18 to 40 times longer than with one thread. The logistic members are
    # fitted on parallel threads instead, one BLAS and OpenMP thread each.
    parallel = kind == "correctness" and estimator == "logreg"
    api = None if parallel else "blas"
    # threadpoolctl limits only the libraries loaded so far, and scikit-learn
    # loads its OpenMP runtime on import. Without the limit, two fits on two
    # threads each used an OpenMP thread per core and were no faster than one.
    _load_library(estimator)
    with threadpool_limits(limits=1, user_api=api):
        return _fit(kind, estimator, X, y=y, correct=correct, known=known, seed=seed,
                    params=params)


def _fit(kind, estimator, X, *, y, correct, known, seed, params) -> Head:
    n_models = correct.shape[1]
    if kind == "cheapest":
        model = make_estimator(estimator, seed, n_classes=len(np.unique(y)),
                               params=params)
        model.fit(X, y)
        classes = np.asarray(_classes_of(model), dtype=np.int64)
        return Head(kind, estimator, n_models, classes, [model], seed, X.shape[1])

    members: list = [None] * n_models
    jobs = []
    for j in range(n_models):
        rows = known[:, j]
        target = correct[rows, j].astype(np.int64)
        if len(np.unique(target)) < 2:
            share = float(target.mean()) if len(target) else 0.5
            members[j] = min(max(share, _CONSTANT_EPS), 1.0 - _CONSTANT_EPS)
            logger.info("model %d: every logged answer is %s; constant probability",
                        j, "correct" if share >= 0.5 else "wrong")
        else:
            jobs.append((j, rows, target))

    def fit_member(job):
        j, rows, target = job
        model = make_estimator(estimator, seed, n_classes=2, params=params)
        return j, model.fit(X[rows], target)

    # LightGBM spreads one fit over the cores itself, so only logistic members
    # are fitted side by side. Each gives the same coefficients as when fitted
    # alone. On 2 cores, 11 members on 73,000 prompts took 10 s instead of 17 s.
    n_threads = min(os.cpu_count() or 1, len(jobs)) if estimator == "logreg" else 1
    if n_threads > 1:
        with ThreadPoolExecutor(n_threads) as pool:
            fitted = list(pool.map(fit_member, jobs))
    else:
        fitted = [fit_member(job) for job in jobs]
    for j, model in fitted:
        members[j] = model
    return Head(kind, estimator, n_models, np.arange(n_models), members, seed,
                X.shape[1])


def make_estimator(name: str, seed: int, *, n_classes: int, params: dict | None = None):
    """Return an unfitted estimator with this project's defaults."""
    params = dict(params or {})
    if name == "logreg":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # Chosen by grouped cross-validation (benchmarks/quality.py). A smaller C
        # raised AIQ on RouterBench down to C = 0.001, but with C = 0.003 a router
        # trained on 60 prompts of three topics no longer separated the topics.
        options = {"C": 0.01, "max_iter": 2000, "random_state": seed} | params
        return make_pipeline(StandardScaler(), LogisticRegression(**options))

    import lightgbm

    # 100 trees beat 300 by cross-validation on RouterBench and RouteLLM MMLU
    # (benchmarks/quality.py), and fit three times faster.
    options = {
        "n_estimators": 100,
        "learning_rate": 0.03,
        "num_leaves": 15,
        "min_child_samples": 20,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.5,
        "reg_lambda": 1.0,
        "random_state": seed,
        "n_jobs": 2,
        "deterministic": True,
        "force_col_wise": True,
        "verbose": -1,
    } | params
    if n_classes > 2:
        options.setdefault("objective", "multiclass")
    return lightgbm.LGBMClassifier(**options)


def _load_library(name: str) -> None:
    if name == "logreg":
        import sklearn.linear_model  # noqa: F401
    else:
        import lightgbm  # noqa: F401


def _classes_of(model) -> np.ndarray:
    return model.classes_ if hasattr(model, "classes_") else model[-1].classes_


def _fold_scaler(pipeline) -> tuple[np.ndarray, np.ndarray]:
    scaler, logistic = pipeline[0], pipeline[-1]
    scale = scaler.scale_ if scaler.scale_ is not None else 1.0
    mean = scaler.mean_ if scaler.mean_ is not None else 0.0
    weights = logistic.coef_ / scale
    bias = logistic.intercept_ - weights @ mean
    if weights.shape[0] == 1 and len(logistic.classes_) == 2:
        # Binary logistic regression keeps one row, the logit of class 1; a zero
        # row for class 0 makes softmax give the same two probabilities.
        weights = np.vstack([np.zeros_like(weights), weights])
        bias = np.concatenate([[0.0], bias])
    return weights, bias
