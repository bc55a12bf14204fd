"""Feed random Unicode to Router.pick for a fixed time and report what failed.

Inputs come from a seeded ``random.Random``: code points from every plane, lone
surrogates, control characters, combining marks, mixes of whitespace, and
strings of up to several megabytes. A fifth are short runs of the bundle's own
vocabulary tokens, because single tokens carry the most extreme learned scores.
Every call must return one of the bundle's models and raise nothing, with
warnings turned into errors. The script prints the number of inputs, and for
each failure type its count and the repr of the smallest input that caused it.
It exits with status 1 if anything failed.

Run from the repository root::

    python benchmarks/fuzz.py --seconds 30      # trains on ../shared/data/routerbench
    python benchmarks/fuzz.py --bundle runs/routerbench --seconds 300
"""

import argparse
import json
import logging
import os
import random
import sys
import tempfile
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

# Code point ranges to draw from, each as likely as the others.
RANGES = [
    (0x00, 0x1F),  # C0 controls, NUL included
    (0x20, 0x7E),  # printable ASCII
    (0x7F, 0x9F),  # DEL and C1 controls
    (0x300, 0x36F),  # combining diacritical marks
    (0x590, 0x6FF),  # Hebrew and Arabic, right to left
    (0x1100, 0x11FF),  # Hangul jamo
    (0x2000, 0x206F),  # spaces, joiners, bidirectional controls
    (0x3000, 0x30FF),  # CJK punctuation, kana
    (0x4E00, 0x9FFF),  # CJK ideographs
    (0xAC00, 0xD7A3),  # Hangul syllables
    (0xD800, 0xDFFF),  # surrogates, which a Python str may hold unpaired
    (0xE000, 0xF8FF),  # private use
    (0xFE00, 0xFFFF),  # variation selectors, specials, noncharacters
    (0x10000, 0x1FFFF),  # plane 1: emoji, historic scripts
    (0x20000, 0x3FFFF),  # planes 2 and 3: CJK extensions
    (0x40000, 0xDFFFF),  # planes 4 to 13, mostly unassigned
    (0xE0000, 0x10FFFF),  # tags, planes 15 and 16
]
# Lengths of the generated strings; a few are megabytes, past every clip window.
LENGTHS = [0, 1, 2, 3, 8, 30, 100, 500, 1537, 1538, 5000, 100_000, 1_000_000,
           3_000_000]
LENGTH_WEIGHTS = [4, 8, 6, 4, 8, 8, 6, 4, 2, 2, 2, 1, 0.3, 0.1]


def random_text(rng: random.Random, vocabulary: list[str]) -> str:
    if vocabulary and rng.random() < 0.2:
        words = rng.choices(vocabulary, k=rng.randint(1, 4))
        return " ".join(word.removeprefix("##") for word in words)
    length = rng.choices(LENGTHS, LENGTH_WEIGHTS)[0]
    if length > 10_000:
        # A repeated random block: building megabytes one character at a time
        # would take most of the time budget.
        block = random_text_of(rng, rng.randint(1, 300))
        return (block * (length // len(block) + 1))[:length] if block else ""
    return random_text_of(rng, length)


def random_text_of(rng: random.Random, length: int) -> str:
    ranges = rng.sample(RANGES, rng.randint(1, 4))
    spaces = rng.random() < 0.5
    chars = []
    for _ in range(length):
        if spaces and rng.random() < 0.15:
            chars.append(rng.choice(" \t\n\r\x0b\x0c\u00a0\u3000"))
        else:
            low, high = rng.choice(ranges)
            chars.append(chr(rng.randint(low, high)))
    return "".join(chars)


def vocabulary_of(r) -> list[str]:
    """Return the static vocabulary of the bundle, or an empty list."""
    name = r.manifest["featurizer"].get("vocab")
    if not name:
        return []
    return json.loads((r.directory / name).read_text(encoding="utf-8"))


def fuzz(r, seconds: float, seed: int) -> tuple[int, int, dict]:
    """Pick random texts for ``seconds``; return inputs, characters and failures."""
    rng = random.Random(seed)
    vocabulary = vocabulary_of(r)
    models = set(r.models)
    failures: dict[str, tuple[int, str]] = {}
    counts = Counter()
    n_inputs = n_chars = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = random_text(rng, vocabulary)
        n_inputs += 1
        n_chars += len(text)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                if rng.random() < 0.1:
                    answer = r.pick_batch([text, text[::-1]])[0]
                else:
                    answer = r.pick(text)
            kind = None if answer in models else f"invalid answer {answer!r}"
        except Exception as e:
            kind = f"{type(e).__name__}: {str(e)[:120]}"
        if kind is None:
            continue
        counts[kind] += 1
        smallest = failures.get(kind)
        if smallest is None or len(text) < smallest[0]:
            failures[kind] = (len(text), text)
    return n_inputs, n_chars, {k: (counts[k], failures[k][1]) for k in counts}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path,
                        help="bundle directory (default: train one from --logs)")
    parser.add_argument("--logs", type=Path, default=DEFAULT_LOGS,
                        help=f"logs to train on (default: {DEFAULT_LOGS})")
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="how long to fuzz, in seconds (default: 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    with tempfile.TemporaryDirectory() as scratch:
        bundle = args.bundle or train_bundle(args.logs, Path(scratch))
        r = router.load(bundle)
        print(f"bundle: {bundle} ({len(r.models)} models)")
        start = time.perf_counter()
        n_inputs, n_chars, failures = fuzz(r, args.seconds, args.seed)
        elapsed = time.perf_counter() - start

    print(f"inputs: {n_inputs:,} in {elapsed:.1f} s ({n_chars:,} characters, "
          f"seed {args.seed})")
    print(f"failing inputs: {sum(count for count, _ in failures.values())}")
    for kind, (count, text) in sorted(failures.items()):
        shown = repr(text)
        if len(text) > 200:
            shown = f"{text[:200]!r}... ({len(text):,} characters)"
        print(f"  {kind}: {count} inputs; smallest: {shown}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
