"""Head fitting: parallel members, constant members, bad arguments."""

import numpy as np
import pytest

from training import fit


def _problem(n_prompts=600, dim=12, n_models=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_prompts, dim)).astype(np.float32)
    weights = rng.normal(size=(dim, n_models))
    correct = (X @ weights + rng.normal(size=(n_prompts, n_models))) > 0
    known = rng.random((n_prompts, n_models)) > 0.3
    # The last model answered every prompt it saw correctly.
    correct[:, -1] = True
    y = np.argmax(correct, axis=1)
    return X, y, correct, known


def test_parallel_members_equal_sequential_ones(monkeypatch):
    X, y, correct, known = _problem()
    monkeypatch.setattr(fit.os, "cpu_count", lambda: 1)
    alone = fit.fit_head("correctness", "logreg", X, y=y, correct=correct,
                         known=known)
    monkeypatch.setattr(fit.os, "cpu_count", lambda: 3)
    side_by_side = fit.fit_head("correctness", "logreg", X, y=y, correct=correct,
                                known=known)

    W1, b1 = alone.linear_parts()
    W2, b2 = side_by_side.linear_parts()
    np.testing.assert_array_equal(W1, W2)
    np.testing.assert_array_equal(b1, b2)
    np.testing.assert_array_equal(alone.predict_outputs(X),
                                  side_by_side.predict_outputs(X))


def test_members_follow_model_order_and_rows():
    X, y, correct, known = _problem()
    head = fit.fit_head("correctness", "logreg", X, y=y, correct=correct,
                        known=known)

    assert isinstance(head.members[-1], float)
    assert head.members[-1] == pytest.approx(1.0 - 1e-4)
    # Each member is fitted on the prompts its model answered: refitting one
    # alone gives the same coefficients in the same column.
    rows = known[:, 1]
    alone = fit.make_estimator("logreg", 0, n_classes=2).fit(X[rows], correct[rows, 1])
    np.testing.assert_allclose(head.members[1][-1].coef_, alone[-1].coef_)
    outputs = head.predict_outputs(X)
    assert outputs.shape == (len(X), correct.shape[1])
    np.testing.assert_allclose(outputs[:, -1], 1.0 - 1e-4, rtol=1e-6)


@pytest.mark.parametrize(("kind", "estimator", "message"), [
    ("best", "logreg", "unknown head 'best'"),
    ("correctness", "svm", "unknown estimator 'svm'"),
])
def test_unknown_head_or_estimator_rejected(kind, estimator, message):
    X, y, correct, known = _problem(n_prompts=40)
    with pytest.raises(ValueError, match=message):
        fit.fit_head(kind, estimator, X, y=y, correct=correct, known=known)
