"""Read and verify a bundle directory: ``manifest.json`` plus ONNX, JSON and .npy files.

Manifest format, version 1
--------------------------
``format``
    Always ``"learned-router-bundle"``.
``format_version``
    An integer. A runtime reads every bundle whose version is at most its own and
    ignores fields it does not know, so a bundle stays readable by later runtimes.
    A runtime rejects a bundle of a newer version.
``files``
    Every other file of the bundle: ``{name: {"sha256": hex, "bytes": int}}``.
``featurizer``
    What turns a prompt into the head's input: ``kind`` (``"static"`` or
    ``"minilm"``), the clip windows ``head_chars`` and ``tail_chars``, its files
    and sizes.
``head``
    The classifier: ``kind`` (``"cheapest"`` for the cheapest-correct classifier,
    ``"correctness"`` for one probability of a correct answer per model),
    ``estimator``, ``file`` (ONNX), ``input`` (``"features"`` or ``"token_ids"``).
``models``
    Model names in cost order, cheapest first, each with ``cost_usd`` and its
    ``accuracy`` over all the training logs, and ``mean_input_tokens`` and
    ``mean_output_tokens`` when the logs count tokens. ``router reprice``
    changes the costs but not this order.
``label_policy``, ``data``, ``metrics``, ``training``
    How labels were made, a fingerprint and summary of the training logs, the
    validation metrics, and the training parameters.
``operating_points``
    The calibrated cost weights and the default quality target, and an optional
    ``pinned`` point that ``router calibrate`` writes; see :mod:`router._choose`.
``validation``
    The files of the validation split's head outputs, scores and costs, and
    the models whose validation costs a reprice replaced; see
    :mod:`training.recalibrate`.
``revisions``
    One entry per ``router calibrate`` or ``router reprice`` run: the command,
    its time, its inputs and the previous ``bundle_id``.
"""

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from router.errors import BundleError, BundleVersionError

FORMAT = "learned-router-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory: Path, *, verify: bool = True) -> dict:
    """Load ``manifest.json`` from a bundle and check its version and checksums.

    Raises
    ------
    BundleError
        If the directory or a listed file is missing, the manifest is not valid
        JSON, or a file's checksum differs from the one recorded at export.
    BundleVersionError
        If the bundle was written by a newer format version.
    """
    directory = Path(directory)
    if not directory.is_dir():
        what = "a file" if directory.exists() else "not found"
        msg = (
            f"bundle directory {str(directory)!r} is {what}; pass the directory "
            "that `router train --out DIR` wrote"
        )
        raise BundleError(msg)
    path = directory / MANIFEST
    if not path.is_file():
        msg = (
            f"{path} not found: {str(directory)!r} is not a bundle. Pass the "
            "directory that `router train --out DIR` wrote."
        )
        raise BundleError(msg)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        msg = f"cannot read {path} ({e}); check the bundle's file permissions"
        raise BundleError(msg) from e
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        msg = f"{path} is not valid JSON ({e}); retrain the bundle with `router train`"
        raise BundleError(msg) from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        msg = f"{path} is not a learned-router manifest (no format {FORMAT!r})"
        raise BundleError(msg)

    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        msg = (
            f"{path} has an invalid format_version {version!r}; expected a whole "
            "number >= 1. Retrain the bundle with `router train`."
        )
        raise BundleError(msg)
    if version > FORMAT_VERSION:
        msg = (
            f"{path} has format_version {version}, but this runtime reads versions "
            f"up to {FORMAT_VERSION}. Upgrade learned-router, or retrain the bundle "
            "with this version's `router train`."
        )
        raise BundleVersionError(msg)

    if verify:
        _verify_files(directory, manifest)
    return manifest


def _verify_files(directory: Path, manifest: dict) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        msg = f"{directory / MANIFEST} lists no files; retrain the bundle"
        raise BundleError(msg)
    for name, entry in files.items():
        try:
            path = directory / _check_name(name)
        except BundleError as e:
            raise BundleError(f"{directory / MANIFEST}: {e}") from e
        if not isinstance(entry, dict):
            msg = (
                f"{directory / MANIFEST} records {entry!r} for file {name!r}; "
                "expected {\"sha256\": ..., \"bytes\": ...}. Retrain the bundle."
            )
            raise BundleError(msg)
        if not path.is_file():
            msg = (
                f"bundle file {path} not found; the bundle is incomplete. Copy the "
                "whole bundle directory again, or retrain it."
            )
            raise BundleError(msg)
        size = path.stat().st_size
        if size != entry.get("bytes"):
            msg = (
                f"bundle file {path} has {size} bytes but the manifest records "
                f"{entry.get('bytes')}; it was truncated or changed after export. "
                "Copy the bundle again, or retrain it."
            )
            raise BundleError(msg)
        if sha256_file(path) != entry.get("sha256"):
            msg = (
                f"bundle file {path} does not match its sha256 in the manifest; it "
                "was changed after export. Copy the bundle again, or retrain it."
            )
            raise BundleError(msg)


def _check_name(name) -> str:
    """Return ``name`` if it names a file directly inside a bundle directory."""
    if not isinstance(name, str) or not name or Path(name).name != name or name == "..":
        msg = (
            f"bundle manifest names the file {name!r}; a bundle's files sit directly "
            "in its directory. Retrain the bundle."
        )
        raise BundleError(msg)
    return name


def listed(manifest: dict, name) -> str:
    """Return ``name`` after checking that the manifest lists it under ``files``.

    Only listed files have their checksums verified by :func:`read_manifest`, so
    the runtime reads no other file.
    """
    files = manifest.get("files")
    if not isinstance(files, dict) or _check_name(name) not in files:
        msg = (
            f"bundle manifest refers to {name!r} but does not list it under "
            "'files', so its checksum cannot be verified. Retrain the bundle."
        )
        raise BundleError(msg)
    return name


def load_array(directory: Path, name: str) -> np.ndarray:
    """Load a ``.npy`` file of the bundle without allowing pickled objects.

    The header is checked against the file size before the data is read, so a
    damaged header raises BundleError instead of allocating its claimed size.
    """
    path = Path(directory) / name
    try:
        with open(path, "rb") as f:
            shape, dtype = _read_npy_header(f, path)
            expected = math.prod(shape) * dtype.itemsize
            remaining = path.stat().st_size - f.tell()
            if remaining != expected:
                msg = (
                    f"its header declares {dtype} of shape {shape} ({expected} "
                    f"bytes) but {remaining} bytes follow"
                )
                raise ValueError(msg)
            f.seek(0)
            array = np.lib.format.read_array(f, allow_pickle=False)
    # NumPy reports a damaged header with assorted exception types, such as
    # EOFError, SyntaxError and tokenize.TokenError, so any of them means damage.
    except Exception as e:
        msg = (
            f"bundle file {path} is not a readable .npy array ({e}); retrain the "
            "bundle"
        )
        raise BundleError(msg) from e
    return array


def _read_npy_header(f, path: Path) -> tuple[tuple, np.dtype]:
    if f.read(6) != b"\x93NUMPY":
        msg = "it does not start with the .npy magic string"
        raise ValueError(msg)
    f.seek(0)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        msg = f".npy format version {version} is not supported; 1.0 and 2.0 are"
        raise ValueError(msg)
    if dtype.hasobject:
        msg = "it holds Python objects, which bundles never contain"
        raise ValueError(msg)
    return shape, dtype


def load_json(directory: Path, name: str):
    """Load a JSON file of the bundle."""
    path = Path(directory) / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        msg = f"bundle file {path} is not readable JSON ({e}); retrain the bundle"
        raise BundleError(msg) from e


def require(manifest: dict, *keys: str):
    """Return ``manifest[k1][k2]...``, raising BundleError naming the missing key."""
    value = manifest
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            dotted = ".".join(keys[: depth + 1])
            msg = f"bundle manifest lacks {dotted!r}; retrain the bundle"
            raise BundleError(msg)
        value = value[key]
    return value
