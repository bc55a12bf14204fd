"""Training pipeline: read logs, label, featurize, fit, export a bundle, track in MLflow.

Install with ``pip install 'learned-router[train]'``. The runtime, :mod:`router`,
needs none of these dependencies.

    >>> from training import train  # doctest: +SKIP
    >>> result = train("../shared/data/routerbench", "runs/routerbench")  # doctest: +SKIP
    >>> result.bundle, result.metrics["val_aiq"]  # doctest: +SKIP
"""

import importlib.util

_REQUIRED = {
    "polars": "polars",
    "sklearn": "scikit-learn",
    "lightgbm": "lightgbm",
    "onnx": "onnx",
    "skl2onnx": "skl2onnx",
    "onnxmltools": "onnxmltools",
    "sentence_transformers": "sentence-transformers",
    "mlflow": "mlflow",
}
_missing = [pip for module, pip in _REQUIRED.items()
            if importlib.util.find_spec(module) is None]
if _missing:
    msg = (
        f"the training pipeline needs {', '.join(_missing)}; install it with "
        "pip install 'learned-router[train]' (install torch==2.13.0 first for a CPU "
        "build)"
    )
    raise ImportError(msg)

from training.pipeline import TrainConfig, TrainResult, evaluate_bundle, train  # noqa: E402

__all__ = ["TrainConfig", "TrainResult", "evaluate_bundle", "train"]
