#!/usr/bin/env bash
# Set up, train a router on the RouterBench logs in ../shared/data (when present),
# and pick a model for a few prompts. Without the logs, picks use the default
# bundle shipped in models/.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true

bash scripts/setup.sh
. .venv/bin/activate

bundle=models/default
if [ -d ../shared/data/routerbench ]; then
    router train --logs ../shared/data/routerbench --format routerbench \
        --out runs/routerbench
    bundle=runs/routerbench
else
    echo "../shared/data/routerbench not found; picking with the default bundle" >&2
fi

python - "$bundle" <<'PY'
import sys

import router

r = router.load(sys.argv[1])
prompts = [
    "Write a python function that reverses a list.",
    "What is the capital of France?",
    "Prove that the square root of 2 is irrational, step by step.",
    "Ian volunteered to eat Dennis's menudo because _ despised eating intestine. "
    "A) Ian B) Dennis",
]
for quality in (0.9, 1.0):
    for prompt in prompts:
        print(f"q={quality}  {r.pick(prompt, quality=quality):<36} {prompt[:60]}")
PY
router pick --bundle "$bundle" --explain "Write a python function that reverses a list."
