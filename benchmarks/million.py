"""Measure :func:`training.scale.train_large` on a million logged answers.

The logs are RouterBench's answers with every prompt made distinct by a suffix
such as `` [request 123456]``: each of its prompts is repeated with a new
suffix until the long-format Parquet file has 1,000,000 rows (prompt, model,
score, cost_usd), about 91,000 prompts answered by 11 models. The router is
then trained on it with the default settings, once featurizing in one process
and once on Ray in local mode, each in a fresh work directory and a fresh
child process.

Per run the table gives the wall time of the whole training, the distinct
prompts per second over that time and over the featurization alone, and the
peak resident memory of the run's process tree (the training process, plus
Ray's processes for the Ray run), sampled from /proc every 0.2 seconds, so a
shorter peak can be missed.

Run from the repository root (about five minutes on two cores)::

    python benchmarks/million.py --write BENCHMARKS.md
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROUTERBENCH = REPO.parent / "shared" / "data" / "routerbench"
N_ROWS = 1_000_000
COMMAND = ["python", "benchmarks/million.py", "--write", "BENCHMARKS.md"]


def build_logs(path: Path, n_rows: int = N_ROWS) -> None:
    """Write ``n_rows`` long-format answers with distinct prompts to ``path``."""
    import polars as pl

    from training import collect

    answers = collect.read_logs(ROUTERBENCH).frame.select(
        "prompt", "model", "score", "cost_usd"
    )
    prompts = answers["prompt"].unique(maintain_order=True)
    n_models = answers["model"].n_unique()
    copies = -(-n_rows // (len(prompts) * n_models))
    index = pl.DataFrame({"prompt": prompts}).with_row_index("prompt_number")
    repeated = (
        answers.lazy()
        .join(index.lazy(), on="prompt")
        .join(pl.LazyFrame({"copy": list(range(copies))}), how="cross")
        .sort("copy", "prompt_number", "model")
        .select(
            pl.concat_str(
                "prompt",
                pl.lit(" [request "),
                (pl.col("copy") * len(prompts) + pl.col("prompt_number")).cast(
                    pl.String
                ),
                pl.lit("]"),
            ).alias("prompt"),
            "model",
            "score",
            "cost_usd",
        )
        .head(n_rows)
    )
    repeated.sink_parquet(path)


def run_one(logs: Path, mode: str, scratch: Path) -> dict:
    """Train once in this process; return the timings as a dict."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from training.scale import train_large

    ray_address = "local" if mode == "ray" else None
    start = time.perf_counter()
    result = train_large(logs, scratch / f"bundle-{mode}", work_dir=scratch / "work",
                         ray_address=ray_address, track=False)
    wall = time.perf_counter() - start
    data = json.loads((result.bundle / "manifest.json").read_text())["data"]
    return {"mode": mode, "wall_s": wall, "n_prompts": data["n_prompts"],
            "n_answers": data["n_answers"], "featurize_s": result.timings["featurize"],
            "aiq": result.metrics.get("val_aiq"), "timings": result.timings}


def _tree_rss(root: int) -> int:
    """Return the summed resident memory in bytes of ``root`` and its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, parent = int(entry), int(fields[1])
        children.setdefault(parent, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(logs: Path, mode: str) -> dict:
    """Run :func:`run_one` in a child process and sample its memory."""
    with tempfile.TemporaryDirectory(prefix=f"million-{mode}-") as scratch:
        command = [sys.executable, __file__, "--run", mode, "--logs", str(logs),
                   "--scratch", scratch]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                 cwd=REPO)
        peak = [0]

        def sample():
            while child.poll() is None:
                peak[0] = max(peak[0], _tree_rss(child.pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        output, _ = child.communicate()
        sampler.join()
        if child.returncode:
            msg = f"the {mode} run failed with exit code {child.returncode}"
            raise RuntimeError(msg)
        result = json.loads(output.strip().splitlines()[-1])
        result["peak_rss_gb"] = peak[0] / 1e9
        return result


def table(results: list[dict], n_rows: int) -> str:
    """Return the Markdown section for ``results``."""
    lines = [
        f"Command: `{shlex.join(COMMAND)}`",
        "",
        f"{n_rows:,} answers, {results[0]['n_prompts']:,} distinct prompts, "
        f"default settings (static featurizer, correctness head, logistic "
        f"regression), {os.cpu_count()} cores, Python {platform.python_version()}. "
        "Targets: peak RSS at most 4 GB, at least 2,000 prompts/s.",
        "",
        "| featurized on | wall time | prompts/s (whole run) | prompts/s (featurize) "
        "| peak RSS | validation AIQ | steps (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        steps = ", ".join(f"{step} {seconds:.1f}"
                          for step, seconds in r["timings"].items())
        lines.append(
            f"| {r['mode']} | {r['wall_s']:.1f} s "
            f"| {r['n_prompts'] / r['wall_s']:,.0f} "
            f"| {r['n_prompts'] / r['featurize_s']:,.0f} | {r['peak_rss_gb']:.2f} GB "
            f"| {r['aiq']:.4f} | {steps} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="Markdown file to update")
    parser.add_argument("--modes", nargs="+", default=["local", "ray"],
                        choices=["local", "ray"])
    parser.add_argument("--rows", type=int, default=N_ROWS)
    parser.add_argument("--run", choices=["local", "ray"], help=argparse.SUPPRESS)
    parser.add_argument("--logs", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from _common import write_section

    if args.run:
        print(json.dumps(run_one(args.logs, args.run, args.scratch)))
        return
    with tempfile.TemporaryDirectory(prefix="million-logs-") as folder:
        logs = Path(folder) / "million.parquet"
        build_logs(logs, args.rows)
        results = [measure(logs, mode) for mode in args.modes]
    text = table(results, args.rows)
    print(text)
    if args.write:
        write_section(args.write, "million", text,
                      heading="Training on a million answers")


if __name__ == "__main__":
    main()
