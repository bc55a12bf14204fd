#!/usr/bin/env bash
# Create .venv (once) and install the package with its training and test extras.
# torch comes first, pinned to the CPU build, so sentence-transformers does not
# pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet torch==2.13.0
python -m pip install --quiet -e '.[train,test,scale]'
