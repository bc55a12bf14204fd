"""Tests of loading damaged, changed or foreign bundles: one BundleError each."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import router
from router.errors import BundleError, BundleVersionError


@pytest.fixture
def bundle_copy(tmp_path, small_bundle) -> Path:
    """A private copy of the session bundle that a test may damage."""
    return Path(shutil.copytree(small_bundle, tmp_path / "bundle"))


def read_manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))


def write_manifest(directory: Path, manifest: dict) -> None:
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def refresh_checksum(directory: Path, name: str) -> None:
    """Record the current size and sha256 of ``name``, as a forger would."""
    manifest = read_manifest(directory)
    data = (directory / name).read_bytes()
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(),
                               "bytes": len(data)}
    write_manifest(directory, manifest)


def edit_manifest(directory: Path, change) -> None:
    manifest = read_manifest(directory)
    change(manifest)
    write_manifest(directory, manifest)


def use_onnx_session(manifest: dict) -> None:
    """Make the runtime score with pick.onnx in onnxruntime, as older bundles do."""
    del manifest["head"]["token_scores"]


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def flip_bytes(path: Path, start: int = 0) -> None:
    """Invert 64 bytes from ``start``; the default damages the file's header."""
    data = bytearray(path.read_bytes())
    data[start:start + 64] = bytes(255 - b for b in data[start:start + 64])
    path.write_bytes(bytes(data))


def flip_middle(path: Path) -> None:
    flip_bytes(path, start=path.stat().st_size // 2)


def test_load_missing_directory(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(BundleError, match=r"nowhere' is not found; pass the directory"):
        router.load(missing)


def test_load_file_not_directory(tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text("{}")
    with pytest.raises(BundleError, match=r"bundle\.json' is a file; pass the"):
        router.load(path)


def test_load_missing_manifest(bundle_copy):
    (bundle_copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"manifest\.json not found: .* not a bundle"):
        router.load(bundle_copy)


@pytest.mark.parametrize("name", ["token_scores.npy", "static_vocab.json", "pick.onnx"])
def test_load_missing_file(bundle_copy, name):
    (bundle_copy / name).unlink()
    with pytest.raises(BundleError, match=rf"{name} not found; the bundle is"):
        router.load(bundle_copy)


@pytest.mark.parametrize("name", ["token_scores.npy", "static_vocab.json", "pick.onnx"])
def test_load_truncated_file(bundle_copy, name):
    truncate(bundle_copy / name)
    with pytest.raises(BundleError, match=rf"{name} has 1000 bytes but the manifest"):
        router.load(bundle_copy)


@pytest.mark.parametrize("name", ["token_scores.npy", "static_vocab.json", "pick.onnx"])
def test_load_changed_file(bundle_copy, name):
    flip_middle(bundle_copy / name)
    with pytest.raises(BundleError, match=rf"{name} does not match its sha256"):
        router.load(bundle_copy)


@pytest.mark.parametrize(
    ("name", "damage", "match"),
    [
        ("token_scores.npy", truncate, r"token_scores\.npy is not a readable \.npy"),
        ("token_scores.npy", flip_bytes, r"token_scores\.npy"),
        ("static_vocab.json", truncate, r"static_vocab\.json is not readable JSON"),
        ("static_vocab.json", flip_middle, r"static_vocab\.json"),
    ],
    ids=["npy_truncated", "npy_flipped", "vocab_truncated", "vocab_flipped"],
)
def test_load_damage_with_checksum(bundle_copy, name, damage, match):
    """Check that damage the checksums were updated for still gives BundleError.

    Changed numbers inside an array with a forged checksum look like any other
    numbers, so only damage to the format can be caught.
    """
    damage(bundle_copy / name)
    refresh_checksum(bundle_copy, name)
    with pytest.raises(BundleError, match=match):
        router.load(bundle_copy)


@pytest.mark.parametrize("damage", [truncate, flip_bytes], ids=["truncated", "flipped"])
def test_load_onnx_damage_with_checksum(bundle_copy, damage):
    """Check a damaged pick.onnx where the runtime runs it in onnxruntime."""
    edit_manifest(bundle_copy, use_onnx_session)
    damage(bundle_copy / "pick.onnx")
    refresh_checksum(bundle_copy, "pick.onnx")
    with pytest.raises(BundleError, match=r"pick\.onnx is not a loadable ONNX model"):
        router.load(bundle_copy)


def test_load_onnx_session_picks(bundle_copy, small_bundle):
    """Check the onnxruntime path itself, so the damage test above means something."""
    edit_manifest(bundle_copy, use_onnx_session)
    texts = ["What is 2 plus 2?", "Write a python function.", "", "\ud800"]

    result = router.load(bundle_copy).pick_batch(texts)

    assert result == router.load(small_bundle).pick_batch(texts)


def test_load_onnx_wrong_inputs(bundle_copy):
    def expect_features(manifest):
        use_onnx_session(manifest)
        manifest["head"]["input"] = "features"

    edit_manifest(bundle_copy, expect_features)
    with pytest.raises(BundleError, match=r"takes the inputs \['token_counts', "):
        router.load(bundle_copy)


@pytest.mark.parametrize(
    "array",
    [np.array([{"a": 1}, None], dtype=object), np.array([["a", None]], dtype=object)],
    ids=["dicts", "mixed"],
)
def test_load_pickled_npy(bundle_copy, array):
    """Check that a pickled object array is rejected although its checksum matches."""
    np.save(bundle_copy / "token_scores.npy", array, allow_pickle=True)
    refresh_checksum(bundle_copy, "token_scores.npy")
    with pytest.raises(BundleError, match=r"holds Python objects"):
        router.load(bundle_copy)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "does not start with the .npy magic string"),
        (b"PK\x03\x04" + bytes(60), "does not start with the .npy magic string"),
        (b"\x93NUMPY\x09\x00" + bytes(60), r"format version \(9, 0\) is not supported"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'", "EOF"),
    ],
    ids=["empty", "zip", "future_version", "cut_header"],
)
def test_load_npy_not_an_array(bundle_copy, content, match):
    (bundle_copy / "token_scores.npy").write_bytes(content)
    refresh_checksum(bundle_copy, "token_scores.npy")
    with pytest.raises(BundleError, match=match):
        router.load(bundle_copy)


def test_load_npy_huge_header(bundle_copy):
    """Check that a header claiming terabytes fails without allocating them."""
    path = bundle_copy / "token_scores.npy"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 3), }"
    padded = header.ljust(118) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(padded).to_bytes(2, "little")
                     + padded.encode("latin1") + bytes(64))
    refresh_checksum(bundle_copy, "token_scores.npy")
    with pytest.raises(BundleError, match=r"declares float32 of shape \(99999999999,"):
        router.load(bundle_copy)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((10, 3), np.float32), r"shape \(10, 3\); the vocabulary and models"),
        (np.zeros(30, np.float32), r"shape \(30,\)"),
        (np.zeros((10, 3), np.int64), "holds int64"),
        (np.array(["a"] * 10), "holds <U1"),
    ],
    ids=["rows", "one_axis", "integers", "strings"],
)
def test_load_token_scores_wrong_shape(bundle_copy, array, match):
    np.save(bundle_copy / "token_scores.npy", array)
    refresh_checksum(bundle_copy, "token_scores.npy")
    with pytest.raises(BundleError, match=match):
        router.load(bundle_copy)


def test_load_token_scores_nan(bundle_copy):
    path = bundle_copy / "token_scores.npy"
    table = np.load(path)
    table[7, 1] = np.nan
    np.save(path, table)
    refresh_checksum(bundle_copy, "token_scores.npy")
    with pytest.raises(BundleError, match="contains NaN or infinite scores"):
        router.load(bundle_copy)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"format": ', r"manifest\.json is not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, r"manifest\.json is not valid JSON"),
        ("[]", "is not a learned-router manifest"),
        ('{"format": "something-else"}', "is not a learned-router manifest"),
    ],
    ids=["cut", "deep", "list", "foreign"],
)
def test_load_invalid_manifest(bundle_copy, content, match):
    (bundle_copy / "manifest.json").write_text(content, encoding="utf-8")
    with pytest.raises(BundleError, match=match):
        router.load(bundle_copy)


def test_load_manifest_not_utf8(bundle_copy):
    (bundle_copy / "manifest.json").write_bytes(b'\xff\xfe{"format": 1}')
    with pytest.raises(BundleError, match=r"not valid JSON .*can't decode byte 0xff"):
        router.load(bundle_copy)


def test_load_newer_format(bundle_copy):
    edit_manifest(bundle_copy, lambda m: m.update(format_version=2))
    with pytest.raises(BundleVersionError,
                       match=r"format_version 2, but this runtime reads versions up "
                             r"to 1\. Upgrade learned-router"):
        router.load(bundle_copy)


def test_newer_format_is_bundle_error(bundle_copy):
    edit_manifest(bundle_copy, lambda m: m.update(format_version=99))
    with pytest.raises(BundleError, match="format_version 99"):
        router.load(bundle_copy)


def drop(*keys):
    def change(manifest):
        target = manifest
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return change


def put(value, *keys):
    def change(manifest):
        target = manifest
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


MANIFEST_DAMAGE = {
    "format_version_text": (put("1", "format_version"), "invalid format_version '1'"),
    "no_files": (put({}, "files"), "lists no files"),
    "file_entry_text": (put("x", "files", "pick.onnx"), "records 'x' for file"),
    "file_outside": (
        put("../elsewhere/token_scores.npy", "head", "token_scores"),
        "names the file '../elsewhere/token_scores.npy'; a bundle's files sit",
    ),
    "absolute_file": (
        put({"sha256": "0", "bytes": 1}, "files", "/etc/hostname"),
        "names the file '/etc/hostname'",
    ),
    "no_models": (drop("models"), "lacks 'models'"),
    "models_text": (put("abc", "models"), "invalid 'models' 'abc'"),
    "model_without_cost": (put([{"name": "a"}], "models"), "invalid model entry"),
    "negative_cost": (put(-1, "models", 0, "cost_usd"), "finite 'cost_usd' >= 0"),
    "fewer_models": (
        lambda m: m.update(models=m["models"][:2]),
        r"invalid head classes \[0, 1, 2\]; expected distinct model indices in 0\.\.1",
    ),
    "class_out_of_range": (put([0, 1, 7], "head", "classes"), "invalid head classes"),
    "unknown_head": (put("ranker", "head", "kind"), "head of kind 'ranker'"),
    "no_activation": (drop("head", "activation"), "invalid token-score head"),
    "short_bias": (put([0.5], "head", "bias"), r"bias has shape \(1,\)"),
    "nan_bias": (put([float("nan")] * 3, "head", "bias"), "is not finite"),
    "unknown_featurizer": (put("bag", "featurizer", "kind"), "featurizer 'bag'"),
    "no_vocab": (drop("featurizer", "vocab"), "lacks 'featurizer.vocab'"),
    "window_text": (put("abc", "featurizer", "head_chars"), "featurizer.head_chars"),
    "negative_window": (put(-5, "featurizer", "tail_chars"), "expected a whole number"),
    "no_points": (put([], "operating_points", "points"), "no operating points"),
    "zero_reference": (
        put(0, "operating_points", "reference_quality"),
        "reference_quality 0.0; it must be a positive number",
    ),
    "point_without_weight": (
        drop("operating_points", "points", 0, "cost_weight"),
        "invalid operating point",
    ),
}


@pytest.mark.parametrize(("change", "match"), MANIFEST_DAMAGE.values(),
                         ids=MANIFEST_DAMAGE.keys())
def test_load_invalid_manifest_field(bundle_copy, change, match):
    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match=match) as caught:
        router.load(bundle_copy)
    assert "retrain" in str(caught.value).lower() or "upgrade" in str(caught.value)
    assert str(bundle_copy) in str(caught.value)


def test_load_unlisted_file(bundle_copy):
    """Check that the runtime reads no file whose checksum the manifest lacks."""
    (bundle_copy / "extra.json").write_text('["[UNK]"]', encoding="utf-8")
    edit_manifest(bundle_copy, put("extra.json", "featurizer", "vocab"))
    with pytest.raises(BundleError, match=r"refers to 'extra\.json' but does not list"):
        router.load(bundle_copy)


def test_vocab_not_token_list(bundle_copy):
    (bundle_copy / "static_vocab.json").write_text('{"[UNK]": 0}', encoding="utf-8")
    refresh_checksum(bundle_copy, "static_vocab.json")
    with pytest.raises(BundleError, match="must hold a JSON list of token strings"):
        router.load(bundle_copy)


def test_load_intact_copy(bundle_copy, small_bundle):
    result = router.load(bundle_copy)
    assert result.bundle_id == router.load(small_bundle).bundle_id
