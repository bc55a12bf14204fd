"""Export a fitted head to ONNX and write the bundle directory.

Every bundle has ``head.onnx``: the classifier converted by skl2onnx (logistic
regression) or onnxmltools (LightGBM), taking ``features`` and returning
``scores``. A static featurizer with a logistic head also gets ``pick.onnx``,
which folds the token vectors into the head: per token, the head's logits of
that token's vector, so a pick is the mean of the rows of its token ids followed
by a softmax or sigmoid. The runtime then reads token ids, never the vectors.

Each exported graph is checked against the native model on the validation split;
a difference above ``TOLERANCE`` stops the export. The bundle is written to a
temporary directory beside ``out`` and moved into place, so a failed run leaves
no half bundle and keeps the bundle already at ``out``.
"""

import json
import logging
import os
import secrets
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from router import _bundle

logger = logging.getLogger(__name__)

TOLERANCE = 1e-4
# onnxmltools converts LightGBM only up to this opset; logistic heads use it too,
# so every bundle needs the same onnxruntime.
OPSET = 15
ML_OPSET = 1


class ExportMismatchError(RuntimeError):
    """An exported graph disagrees with the native model beyond tolerance."""


def head_to_onnx(head, dim: int) -> onnx.ModelProto:
    """Convert a fitted :class:`training.fit.Head` to an ONNX model.

    The model has one input, ``features`` (float32, ``[n, dim]``), and one output,
    ``scores`` (float32, ``[n, k]``): class probabilities for the cheapest head,
    each model's probability of a correct answer for the correctness head.
    """
    if head.kind == "cheapest":
        member = _convert(head.estimator, head.members[0], dim)
        return _rename_io(member, "probabilities")

    parts, nodes, initializers, opsets = [], [], [], {}
    for j, member in enumerate(head.members):
        prefix = f"m{j}_"
        column = f"{prefix}_router_positive"
        if isinstance(member, float):
            initializers.append(numpy_helper.from_array(
                np.array([member], dtype=np.float32), f"{prefix}_router_constant"))
            nodes += [
                helper.make_node("Shape", ["features"], [f"{prefix}_router_shape"],
                                 start=0, end=1),
                helper.make_node("Expand", [f"{prefix}_router_constant", f"{prefix}_router_shape"],
                                 [f"{prefix}_router_flat"]),
            ]
        else:
            sub = onnx.compose.add_prefix(_convert(head.estimator, member, dim), prefix)
            sub_input = sub.graph.input[0].name
            for node in sub.graph.node:
                node.input[:] = ["features" if x == sub_input else x for x in node.input]
                nodes.append(node)
            initializers += list(sub.graph.initializer)
            for imp in sub.opset_import:
                opsets[imp.domain] = max(opsets.get(imp.domain, 0), imp.version)
            # A scalar index drops the class axis: P(class 1) as a [n] vector.
            initializers.append(numpy_helper.from_array(
                np.array(1, dtype=np.int64), f"{prefix}_router_class_one"))
            nodes.append(helper.make_node(
                "Gather", [f"{prefix}probabilities", f"{prefix}_router_class_one"], [f"{prefix}_router_flat"],
                axis=1))
        initializers.append(numpy_helper.from_array(
            np.array([1], dtype=np.int64), f"{prefix}_router_unsqueeze_axis"))
        nodes.append(helper.make_node(
            "Unsqueeze", [f"{prefix}_router_flat", f"{prefix}_router_unsqueeze_axis"], [column]))
        parts.append(column)
    nodes.append(helper.make_node("Concat", parts, ["scores"], axis=1))

    opsets[""] = max(opsets.get("", 0), OPSET)
    graph = helper.make_graph(
        nodes, "correctness",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, dim])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT,
                                       [None, len(head.members)])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def token_scores(head, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return per-token logits ``(n_tokens + 1, k)`` and the bias of a logistic head.

    Because the head is affine in the mean token vector, the mean of per-token
    logits equals the logits of the mean vector. The last row, all zeros, pads.
    """
    weights, bias = head.linear_parts()
    table = np.asarray(vectors, dtype=np.float64) @ weights.T
    table = np.vstack([table, np.zeros((1, table.shape[1]))]).astype(np.float32)
    return table, np.asarray(bias, dtype=np.float32)


def fused_token_graph(head, table: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    """Build ``pick.onnx``: token ids in, scores out, for a logistic head.

    Inputs are ``token_ids`` (int64, ``[n, length]``, padded with the last row of
    ``table``) and ``token_counts`` (float32, ``[n, 1]``, at least 1).
    """
    final = "Softmax" if head.kind == "cheapest" else "Sigmoid"
    final_attrs = {"axis": 1} if final == "Softmax" else {}
    nodes = [
        helper.make_node("Gather", ["table", "token_ids"], ["gathered"], axis=0),
        helper.make_node("ReduceSum", ["gathered", "reduce_axes"], ["summed"],
                         keepdims=0),
        helper.make_node("Div", ["summed", "token_counts"], ["mean_logits"]),
        helper.make_node("Add", ["mean_logits", "bias"], ["logits"]),
        helper.make_node(final, ["logits"], ["scores"], **final_attrs),
    ]
    initializers = [
        numpy_helper.from_array(table, "table"),
        numpy_helper.from_array(bias, "bias"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "reduce_axes"),
    ]
    graph = helper.make_graph(
        nodes, "pick",
        [helper.make_tensor_value_info("token_ids", TensorProto.INT64, [None, None]),
         helper.make_tensor_value_info("token_counts", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT,
                                       [None, table.shape[1]])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def check_against_native(model: onnx.ModelProto, feeds: dict, expected: np.ndarray,
                         name: str) -> float:
    """Run ``model`` on ``feeds`` and return its largest difference from ``expected``.

    Raises
    ------
    ExportMismatchError
        If the difference exceeds :data:`TOLERANCE`.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    got = session.run(["scores"], feeds)[0]
    if got.shape != expected.shape:
        msg = f"{name}: ONNX output shape {got.shape} differs from native {expected.shape}"
        raise ExportMismatchError(msg)
    diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
    if diff > TOLERANCE:
        msg = (
            f"{name}: ONNX probabilities differ from the native model's by {diff:.2e} "
            f"on the validation split (tolerance {TOLERANCE:.0e}); the export is wrong"
        )
        raise ExportMismatchError(msg)
    logger.info("%s: matches the native model within %.1e", name, diff)
    return diff


def write_bundle(out: Path, manifest: dict, files: dict) -> Path:
    """Write ``files`` and ``manifest`` into the bundle directory ``out``, atomically.

    Parameters
    ----------
    files : dict
        File name to content: an ``onnx.ModelProto``, raw ``bytes``, a NumPy
        array (saved as ``.npy``), or a JSON-serializable value.

    Returns
    -------
    Path
        ``out``, now holding the new bundle.
    """
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_dir(out.parent, f".{out.name}.", ".tmp")
    try:
        entries = {}
        for name, content in files.items():
            path = staging / name
            if isinstance(content, onnx.ModelProto):
                path.write_bytes(content.SerializeToString())
            elif isinstance(content, bytes):
                path.write_bytes(content)
            elif isinstance(content, np.ndarray):
                with open(path, "wb") as f:
                    np.save(f, content, allow_pickle=False)
            else:
                path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
            entries[name] = {"sha256": _bundle.sha256_file(path),
                             "bytes": path.stat().st_size}
        manifest = dict(manifest, files=entries)
        manifest["bundle_id"] = _bundle_id(entries)
        (staging / _bundle.MANIFEST).write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        _replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _bundle_id(entries: dict) -> str:
    import hashlib

    text = "\n".join(f"{name}:{entries[name]['sha256']}" for name in sorted(entries))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _new_dir(parent: Path, prefix: str, suffix: str) -> Path:
    """Create a new, uniquely named directory in ``parent`` and return it.

    Unlike ``tempfile.mkdtemp``, whose directories are private (mode 0700), it
    applies the umask, so a bundle gets the permissions of any new directory and
    a service running as another user can read it.
    """
    while True:
        path = parent / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path


def _replace_dir(staging: Path, out: Path) -> None:
    # A rename is atomic on one file system. An existing bundle is moved aside
    # first, moved back if the new one does not take its place, and deleted only
    # after the new one is in place.
    if out.exists() and not out.is_dir():
        msg = f"--out {out} is a file; choose a directory path for the bundle"
        raise FileExistsError(msg)
    if out.exists() and not (out / _bundle.MANIFEST).is_file() and any(out.iterdir()):
        msg = (
            f"--out {out} exists and is not a bundle; refusing to replace it. "
            "Choose an empty or new directory."
        )
        raise FileExistsError(msg)
    old = None
    try:
        if out.exists():
            old = _new_dir(out.parent, f".{out.name}.old-", "")
            # Renaming a directory onto an empty one replaces it.
            os.replace(out, old)
        os.replace(staging, out)
    except BaseException:
        # Also reached on KeyboardInterrupt, so the old bundle is never left
        # aside with nothing at ``out``.
        if old is not None and not out.exists():
            os.replace(old, out)
        elif old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _convert(estimator: str, model, dim: int) -> onnx.ModelProto:
    if estimator == "logreg":
        from skl2onnx import to_onnx

        logistic = model[-1]
        return to_onnx(
            model,
            np.zeros((1, dim), dtype=np.float32),
            options={id(logistic): {"zipmap": False}},
            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        )
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    converted = convert_lightgbm(
        model,
        initial_types=[("features", FloatTensorType([None, dim]))],
        target_opset=OPSET,
        zipmap=False,
    )
    _round_thresholds_down(converted, model.booster_)
    return converted


def _round_thresholds_down(model: onnx.ModelProto, booster) -> None:
    """Make float32 split thresholds decide like LightGBM's float64 ones.

    LightGBM splits on ``x <= t`` with ``t`` a float64 between two feature values;
    the converter rounds ``t`` to the nearest float32, which can land on a
    feature value and send it down the other branch. For a float32 ``x``,
    ``x <= t`` holds exactly when ``x`` is at most the largest float32 not above
    ``t``, so each rounded-up threshold is moved one float32 step down.
    """
    rounded_up = set()
    stack = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "threshold" not in node:
            continue
        threshold = float(node["threshold"])
        if float(np.float32(threshold)) > threshold:
            rounded_up.add(float(np.float32(threshold)))
        stack += [node["left_child"], node["right_child"]]
    for node in model.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        modes = next(a for a in node.attribute if a.name == "nodes_modes").strings
        values = next(a for a in node.attribute if a.name == "nodes_values")
        for i, (mode, value) in enumerate(zip(modes, values.floats)):
            if mode == b"BRANCH_LEQ" and float(np.float32(value)) in rounded_up:
                values.floats[i] = float(np.nextafter(np.float32(value),
                                                      np.float32(-np.inf)))


def _rename_io(model: onnx.ModelProto, probabilities: str) -> onnx.ModelProto:
    """Name the input ``features`` and keep only the output ``scores``."""
    graph = model.graph
    old_input = graph.input[0].name
    names = [o.name for o in graph.output]
    source = probabilities if probabilities in names else names[-1]
    for node in graph.node:
        node.input[:] = ["features" if x == old_input else x for x in node.input]
    graph.input[0].name = "features"
    keep = [o for o in graph.output if o.name == source]
    del graph.output[:]
    graph.output.extend(keep)
    graph.node.append(helper.make_node("Identity", [source], ["scores"]))
    graph.output[0].name = "scores"
    onnx.checker.check_model(model)
    return model
