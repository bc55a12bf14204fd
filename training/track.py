"""Record a training or evaluation run in MLflow.

The default tracking store is an embedded SQLite file, ``sqlite:///mlflow.db`` in
the working directory, so runs need no server; ``mlflow ui --backend-store-uri
sqlite:///mlflow.db`` opens them. Artifacts go to the store's default artifact
location (``./mlruns`` for a SQLite store).
"""

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "learned-router"


def log_run(*, tracking_uri: str | None, experiment: str, run_name: str,
            params: dict, metrics: dict, artifacts: list[Path],
            tags: dict | None = None) -> str:
    """Log one MLflow run and return its run id.

    Parameters
    ----------
    params, metrics : dict
        Flat mappings; metric values that are None or not finite are skipped,
        because MLflow rejects them.
    artifacts : list of Path
        Files and directories to store with the run.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    uri = tracking_uri or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        finite = {k: float(v) for k, v in metrics.items()
                  if isinstance(v, (int, float)) and v == v and abs(v) != float("inf")}
        mlflow.log_metrics(finite)
        if tags:
            mlflow.set_tags(tags)
        for path in artifacts:
            path = Path(path)
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path=path.name)
            elif path.is_file():
                mlflow.log_artifact(str(path))
        logger.info("MLflow run %s logged to %s", run.info.run_id, uri)
        return run.info.run_id


def _param(value) -> str:
    text = str(value)
    # MLflow caps parameter values at 6,000 characters.
    return text if len(text) <= 6000 else text[:5997] + "..."
