"""Tests that a failed run never leaves half a bundle or harms the one in place."""

import json
import os
import stat

import pytest

import router
import training
from router import _bundle
from tests.bad_logs import write_rows
from tests.conftest import small_log_rows
from training import export

PROBES = [
    "What is 11 plus 31? Give only the number.",
    "Write a python function that returns the 4th item of a list of 9 items.",
    "Write a careful essay on the history of bridge number 77 and its 2 arches.",
    "",
    "東京 😀 \ud800",
]


@pytest.fixture
def existing(tmp_path, small_logs):
    """A bundle already at ``out``, as a previous run left it."""
    out = tmp_path / "runs" / "router"
    training.train(small_logs, out, track=False)
    return out


def entries(directory) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def leftovers(directory) -> list[str]:
    """Return the hidden staging and set-aside directories under ``directory``."""
    return sorted(p.name for p in directory.rglob(".*"))


def assert_intact(out, bundle_id: str) -> None:
    assert router.load(out).bundle_id == bundle_id
    assert leftovers(out.parent) == []


def test_failed_export_check_keeps_bundle(existing, small_logs, monkeypatch):
    bundle_id = router.load(existing).bundle_id

    def mismatch(*args, **kwargs):
        raise export.ExportMismatchError("pick.onnx: differs by 1e-2")

    monkeypatch.setattr(export, "check_against_native", mismatch)
    with pytest.raises(export.ExportMismatchError, match="differs by 1e-2"):
        training.train(small_logs, existing, track=False)

    assert_intact(existing, bundle_id)


def test_interrupt_mid_write_keeps_bundle(existing, small_logs, monkeypatch):
    """Check a KeyboardInterrupt while the new bundle's files are written."""
    bundle_id = router.load(existing).bundle_id
    real_sha256 = _bundle.sha256_file
    calls = []

    def interrupted_sha256(path):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_sha256(path)

    monkeypatch.setattr(_bundle, "sha256_file", interrupted_sha256)
    with pytest.raises(KeyboardInterrupt):
        training.train(small_logs, existing, track=False)

    assert_intact(existing, bundle_id)


def test_interrupt_between_renames(existing, small_logs, monkeypatch):
    """Check a KeyboardInterrupt after the old bundle moved aside, before the new.

    The old bundle must be moved back, not left in a hidden directory.
    """
    bundle_id = router.load(existing).bundle_id
    real_replace = os.replace
    calls = []

    def replace(source, target):
        calls.append(source)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(source, target)

    monkeypatch.setattr(export.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        training.train(small_logs, existing, track=False)

    # Old bundle aside, new bundle in (interrupted), old bundle back.
    assert len(calls) == 3
    assert_intact(existing, bundle_id)


def test_failed_first_run_leaves_nothing(tmp_path, small_logs, monkeypatch):
    out = tmp_path / "runs" / "router"

    def mismatch(*args, **kwargs):
        raise export.ExportMismatchError("differs")

    monkeypatch.setattr(export, "check_against_native", mismatch)
    with pytest.raises(export.ExportMismatchError):
        training.train(small_logs, out, track=False)

    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_out_not_a_bundle_kept(tmp_path, small_logs):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "keep.txt").write_text("mine")

    with pytest.raises(FileExistsError, match="exists and is not a bundle; refusing"):
        training.train(small_logs, out, track=False)

    assert (out / "keep.txt").read_text() == "mine"
    assert entries(tmp_path) == ["notes"]
    assert leftovers(tmp_path) == []


def test_out_is_a_file(tmp_path, small_logs):
    out = tmp_path / "bundle"
    out.write_text("mine")

    with pytest.raises(FileExistsError, match="is a file; choose a directory path"):
        training.train(small_logs, out, track=False)

    assert out.read_text() == "mine"
    assert entries(tmp_path) == ["bundle"]


def test_successful_run_replaces_bundle(existing, tmp_path):
    rows = [dict(row, cost_usd=2 * row["cost_usd"]) for row in small_log_rows()]
    logs = write_rows(tmp_path, rows)
    old_id = router.load(existing).bundle_id

    training.train(logs, existing, track=False)

    assert router.load(existing).bundle_id != old_id
    assert leftovers(existing.parent) == []


def test_bundle_mode_follows_umask(tmp_path, small_logs):
    """Check that the bundle directory is as readable as any new directory."""
    previous = os.umask(0o022)
    try:
        bundle = training.train(small_logs, tmp_path / "out", track=False).bundle
    finally:
        os.umask(previous)

    assert stat.S_IMODE(bundle.stat().st_mode) == 0o755


def test_same_seed_same_bundle(tmp_path, small_logs):
    """Check that the same logs and seed give the same picks and manifest."""
    first = training.train(small_logs, tmp_path / "a", track=False, seed=7).bundle
    second = training.train(small_logs, tmp_path / "b", track=False, seed=7).bundle
    manifests = [json.loads((bundle / _bundle.MANIFEST).read_text())
                 for bundle in (first, second)]
    for manifest in manifests:
        del manifest["created_at"]
    prompts = [row["prompt"] for row in small_log_rows()] + PROBES

    assert manifests[0] == manifests[1]
    assert router.load(first).pick_batch(prompts) == router.load(second).pick_batch(
        prompts)
    for quality in (0.5, 0.9, 1.0):
        assert [router.load(first).pick(p, quality=quality) for p in PROBES] == [
            router.load(second).pick(p, quality=quality) for p in PROBES]
