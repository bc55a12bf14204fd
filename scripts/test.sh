#!/usr/bin/env bash
# Set up and run the test suite. Tests that need ../shared/data skip with a
# reason when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true

bash scripts/setup.sh
. .venv/bin/activate
python -m pytest "$@"
