"""Check that the runtime stays light: no training stack in a picking process."""

import json
import subprocess
import sys

HEAVY = ["torch", "sentence_transformers", "transformers", "sklearn", "lightgbm",
         "polars", "mlflow", "onnx", "skl2onnx", "onnxmltools", "model2vec"]


def _modules_after(code: str) -> set[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True,
                         text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_router_loads_no_heavy_module():
    """Check that `import router` imports none of the training dependencies."""
    loaded = _modules_after("import router")
    for name in HEAVY:
        assert name not in loaded, f"import router imported {name}"


def test_pick_loads_no_heavy_module(small_bundle):
    """Check that loading a bundle and picking imports no training dependency."""
    code = (
        "import router\n"
        f"r = router.load({str(small_bundle)!r})\n"
        "r.pick('What is 2 plus 2?')\n"
        "r.pick_batch(['a', 'b'])"
    )
    loaded = _modules_after(code)
    for name in HEAVY:
        assert name not in loaded, f"picking imported {name}"
