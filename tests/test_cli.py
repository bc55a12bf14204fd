"""Tests of the ``router`` command on bad input: one ``error:`` line and exit 2."""

import os
import re
import subprocess
import sys

import pytest

import router
from router.cli import EXIT_ERROR, main
from tests.bad_logs import ERROR_CASES, WARNING_CASES
from training import export


def train_args(options: dict, out) -> list[str]:
    args = ["train", "--logs", str(options["logs"]), "--out", str(out), "--no-track"]
    if "prices" in options:
        args += ["--prices", str(options["prices"])]
    if "format" in options:
        args += ["--format", options["format"]]
    return args


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(("write", "error", "match"), ERROR_CASES.values(),
                         ids=ERROR_CASES.keys())
def test_train_bad_logs_one_line(tmp_path, capsys, write, error, match):
    out = tmp_path / "out"

    status = main(train_args(write(tmp_path), out))

    stderr = capsys.readouterr().err
    assert status == EXIT_ERROR
    assert len(error_lines(stderr)) == 1
    assert stderr.endswith("\n")
    assert re.search(match, error_lines(stderr)[0])
    assert "Traceback" not in stderr
    assert not out.exists()


@pytest.mark.parametrize(("write", "patterns", "changes", "n_answers"),
                         WARNING_CASES.values(), ids=WARNING_CASES.keys())
def test_train_bad_logs_warn(tmp_path, capsys, write, patterns, changes, n_answers):
    """Check that --quiet still prints dropped and changed rows, one line each."""
    status = main(train_args(write(tmp_path), tmp_path / "out") + ["--quiet"])

    stderr = capsys.readouterr().err
    lines = stderr.splitlines()
    assert status == 0
    assert len(lines) == len(patterns)
    for pattern, line in zip(patterns, lines):
        assert line.startswith("warning: ")
        assert re.search(pattern, line), (pattern, line)
    assert router.load(tmp_path / "out").manifest["data"]["changes"] == changes


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--format", "csv"], r"argument --format: invalid choice: 'csv'"),
        (["--threshold", "high"], r"argument --threshold: invalid float value"),
        (["--head", "tree"], r"argument --head: invalid choice: 'tree'"),
    ],
    ids=["format", "threshold", "head"],
)
def test_train_bad_option_one_line(tmp_path, capsys, small_logs, args, match):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--logs", str(small_logs), "--out", str(tmp_path / "o"),
              "--no-track", *args])

    stderr = capsys.readouterr().err
    assert exit_info.value.code == EXIT_ERROR
    assert stderr.count("\n") == 1
    assert stderr.startswith("error: router train: ")
    assert re.search(match, stderr)
    assert "(see router train --help)" in stderr


def test_train_missing_option_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--no-track"])

    stderr = capsys.readouterr().err
    assert exit_info.value.code == EXIT_ERROR
    assert stderr.count("\n") == 1
    assert "the following arguments are required: --logs, --out" in stderr


def test_train_failed_export_keeps_bundle(tmp_path, capsys, small_logs, monkeypatch):
    """Check the CLI path of a run that fails after training: old bundle intact."""
    out = tmp_path / "router"
    assert main(["train", "--logs", str(small_logs), "--out", str(out), "--no-track",
                 "--quiet"]) == 0
    bundle_id = router.load(out).bundle_id
    capsys.readouterr()

    def mismatch(*args, **kwargs):
        raise export.ExportMismatchError("pick.onnx: differs by 1e-2")

    monkeypatch.setattr(export, "check_against_native", mismatch)
    status = main(["train", "--logs", str(small_logs), "--out", str(out),
                   "--no-track", "--quiet"])

    stderr = capsys.readouterr().err
    assert status == EXIT_ERROR
    assert stderr == ("error: ExportMismatchError: pick.onnx: differs by 1e-2 "
                      "(rerun with --debug for the traceback)\n")
    assert router.load(out).bundle_id == bundle_id


def test_multiline_error_one_line(tmp_path, capsys, monkeypatch):
    """Check that a message spanning lines, as parser errors do, prints as one."""
    def fail(args):
        raise router.LogError("cannot parse logs.csv as CSV:\n  bad quote\n  at row 3")

    monkeypatch.setattr("router.cli._pick", fail)
    status = main(["pick", "hello", "--bundle", str(tmp_path)])

    assert status == EXIT_ERROR
    assert capsys.readouterr().err == (
        "error: cannot parse logs.csv as CSV: bad quote at row 3\n")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--bundle", "{missing}"],
         r"^error: bundle directory '.*nowhere' is not found"),
        (["--bundle", "{bundle}", "--allowed", "gpt-9"],
         r"^error: allowed names models this router does not know: \['gpt-9'\]"),
        (["--bundle", "{bundle}", "--quality", "7"],
         r"^error: quality must be between 0 and 1\.5"),
    ],
    ids=["missing_bundle", "unknown_model", "quality"],
)
def test_pick_errors_one_line(tmp_path, capsys, small_bundle, args, match):
    values = {"missing": str(tmp_path / "nowhere"), "bundle": str(small_bundle)}
    status = main(["pick", "hello", *(a.format(**values) for a in args)])

    stderr = capsys.readouterr().err
    assert status == EXIT_ERROR
    assert stderr.count("\n") == 1
    assert re.search(match, stderr)


def test_pick_damaged_bundle_one_line(tmp_path, capsys, small_bundle):
    import shutil

    damaged = shutil.copytree(small_bundle, tmp_path / "b")
    (damaged / "token_scores.npy").write_bytes(b"not an array")

    status = main(["pick", "hello", "--bundle", str(damaged)])

    stderr = capsys.readouterr().err
    assert status == EXIT_ERROR
    assert stderr.count("\n") == 1
    assert "token_scores.npy has 12 bytes but the manifest records" in stderr


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run([sys.executable, "-m", "router.cli", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_process_error_without_traceback(tmp_path):
    """Check the installed entry point's output as a shell user sees it."""
    empty = tmp_path / "logs.csv"
    empty.write_bytes(b"")

    result = run_cli("train", "--logs", str(empty), "--out", str(tmp_path / "o"),
                     "--no-track")

    assert result.returncode == EXIT_ERROR
    assert result.stderr == f"error: log file {empty} is empty (0 bytes); fill it or " \
                            "remove it\n"
    assert result.stdout == ""


def test_process_debug_traceback(tmp_path):
    empty = tmp_path / "logs.csv"
    empty.write_bytes(b"")

    result = run_cli("train", "--logs", str(empty), "--out", str(tmp_path / "o"),
                     "--no-track", "--debug")

    assert result.returncode == EXIT_ERROR
    assert result.stderr.count("Traceback (most recent call last):") == 1
    assert "router.errors.LogError: log file" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: log file ")
