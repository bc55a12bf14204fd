"""Pick from one Router in many threads and compare every pick with one thread's.

The picks mix real prompts from the logs with random Unicode strings that the
router has never seen, so the threads grow its memoized chunk table while they
read it. Each pick is compared with the pick that a separate Router makes for the
same prompt in a single thread. The script prints the counts, the errors, the
mismatches and the throughput; it exits with status 1 if any pick raised or
disagreed.

Run from the repository root::

    python benchmarks/stress.py                  # trains on ../shared/data/routerbench
    python benchmarks/stress.py --bundle runs/routerbench
"""

import argparse
import logging
import os
import random
import resource
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A checkout need not be installed, because the repository root contains both
# packages.
sys.path.insert(0, str(ROOT))

from _common import train_bundle  # noqa: E402

import router  # noqa: E402

DEFAULT_LOGS = ROOT.parent / "shared" / "data" / "routerbench"
# Every pick_batch call takes this many prompts; one step in BATCH_EVERY is one.
BATCH_SIZE = 32
BATCH_EVERY = 50


def random_text(rng: random.Random) -> str:
    """Return a random string from one of several Unicode mixes, up to 2,000 chars."""
    length = rng.choice([0, 1, 2, 5, 20, 100, 400, 2000])
    kind = rng.randrange(5)
    if kind == 0:  # any code point, lone surrogates included
        chars = [chr(rng.randint(0, sys.maxunicode)) for _ in range(length)]
    elif kind == 1:  # the Basic Multilingual Plane
        chars = [chr(rng.randint(0, 0xFFFF)) for _ in range(length)]
    elif kind == 2:  # words of letters with spaces, as prompts mostly are
        chars = [rng.choice("abcdefghij klmnop qrstuvwxyz ") for _ in range(length)]
    elif kind == 3:  # controls, whitespace, surrogates and joiners
        pool = "\x00\x01\x1f\x7f\x9f \t\n\u00a0\u2028\ud800\udfff\u200d\ufeff\ufffd"
        chars = [rng.choice(pool) for _ in range(length)]
    else:  # CJK, emoji and right-to-left text
        pool = "東京你好世界😀🚀👩‍👧مرحباשלום각한글 "
        chars = [rng.choice(pool) for _ in range(length)]
    return "".join(chars)


def real_prompts(logs: Path, limit: int) -> list[str]:
    from training import collect

    with warnings.catch_warnings():
        # The reader's warnings about the real logs were printed when training.
        warnings.simplefilter("ignore")
        frame = collect.read_logs(logs).frame
    prompts = sorted(set(frame["prompt"].to_list()))
    return prompts[:limit]


def build_workload(prompts: list[str], n_picks: int, garbage_share: float,
                   seed: int) -> list[str]:
    """Return ``n_picks`` texts: real prompts, and fresh random strings."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n_picks):
        if prompts and rng.random() >= garbage_share:
            texts.append(rng.choice(prompts))
        else:
            texts.append(random_text(rng))
    return texts


def run_thread(shared, texts: list[str], expected: dict, barrier, report: dict,
               lock) -> None:
    errors = Counter()
    examples = {}
    mismatches = []
    barrier.wait()
    i = 0
    while i < len(texts):
        if i % BATCH_EVERY == 0:
            batch = texts[i:i + BATCH_SIZE]
            try:
                answers = shared.pick_batch(batch)
            except Exception as e:
                errors[type(e).__name__] += len(batch)
                examples.setdefault(type(e).__name__, (batch, repr(e)))
                answers = [None] * len(batch)
        else:
            batch = texts[i:i + 1]
            try:
                answers = [shared.pick(batch[0])]
            except Exception as e:
                errors[type(e).__name__] += 1
                examples.setdefault(type(e).__name__, (batch, repr(e)))
                answers = [None]
        for text, answer in zip(batch, answers):
            if answer is not None and answer != expected[text]:
                mismatches.append((text, answer, expected[text]))
        i += len(batch)
    with lock:
        report["picks"] += len(texts)
        report["errors"].update(errors)
        for name, example in examples.items():
            report["examples"].setdefault(name, example)
        report["mismatches"] += mismatches


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path,
                        help="bundle directory (default: train one from --logs)")
    parser.add_argument("--logs", type=Path, default=DEFAULT_LOGS,
                        help="logs for training and real prompts "
                             f"(default: {DEFAULT_LOGS})")
    parser.add_argument("--threads", type=int, default=8, help="threads (default: 8)")
    parser.add_argument("--picks", type=int, default=100_000,
                        help="picks in total over all threads (default: 100000)")
    parser.add_argument("--garbage-share", type=float, default=0.5,
                        help="share of picks that are random Unicode (default: 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    with tempfile.TemporaryDirectory() as scratch:
        bundle = args.bundle or train_bundle(args.logs, Path(scratch))
        prompts = real_prompts(args.logs, 5000) if args.logs.exists() else []
        texts = build_workload(prompts, args.picks, args.garbage_share, args.seed)
        unique = list(dict.fromkeys(texts))
        print(f"bundle: {bundle}")
        print(f"workload: {len(texts):,} picks over {len(unique):,} distinct texts "
              f"({len(prompts):,} real prompts, garbage share {args.garbage_share})")

        # Picks of one thread, from a Router of its own.
        single = router.load(bundle)
        start = time.perf_counter()
        expected = {text: single.pick(text) for text in unique}
        single_seconds = time.perf_counter() - start
        print(f"single thread: {len(unique):,} picks in {single_seconds:.2f} s, "
              f"{len(unique) / single_seconds:,.0f} picks/s (cold chunk table)")

        shared = router.load(bundle)
        order = list(range(len(texts)))
        random.Random(args.seed + 1).shuffle(order)
        slices = [[texts[j] for j in order[k::args.threads]]
                  for k in range(args.threads)]
        report = {"picks": 0, "errors": Counter(), "examples": {}, "mismatches": []}
        lock = threading.Lock()
        barrier = threading.Barrier(args.threads + 1)
        workers = [threading.Thread(target=run_thread,
                                    args=(shared, s, expected, barrier, report, lock))
                   for s in slices]
        for worker in workers:
            worker.start()
        barrier.wait()
        start = time.perf_counter()
        for worker in workers:
            worker.join()
        seconds = time.perf_counter() - start

    print(f"{args.threads} threads: {report['picks']:,} picks in {seconds:.2f} s, "
          f"{report['picks'] / seconds:,.0f} picks/s")
    print(f"errors: {sum(report['errors'].values())}")
    for name, count in report["errors"].most_common():
        batch, message = report["examples"][name]
        print(f"  {name}: {count} picks, for example {message} on {batch[0][:80]!r}")
    print(f"mismatches with the single-thread answer: {len(report['mismatches'])}")
    for text, answer, wanted in report["mismatches"][:5]:
        print(f"  {text[:80]!r}: got {answer!r}, single thread {wanted!r}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak:,.0f} MB (Linux ru_maxrss)")
    print(f"picks per model: {dict(Counter(expected[t] for t in texts).most_common())}")
    return 1 if report["errors"] or report["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
