"""Measure what the ``on_pick`` hook costs a pick, unset and set.

Three ways to pick a model for the same prompts are timed per call, in
interleaved rounds so that other load on the machine hits them alike:

- ``pick``, on_pick unset: :meth:`router.Router.pick` as shipped;
- ``pick body``, the same steps without the ``on_pick is None`` check, which is
  what ``pick`` ran before the hook existed;
- ``pick``, on_pick a no-op: the cost of building one record per pick.

Run from the repository root::

    python benchmarks/on_pick.py [--bundle DIR]
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import router  # noqa: E402

PROMPTS = [
    "What is 17 plus 25? Give only the number.",
    "Write a python function that reverses a list.",
    "Summarize the causes of the First World War in three sentences.",
    "Which of these is a mammal: shark, dolphin, trout?",
]


def time_calls(call, prompts: list[str], n: int) -> list[float]:
    """Return the duration of each of ``n`` calls in microseconds."""
    durations = []
    for i in range(n):
        prompt = prompts[i % len(prompts)]
        start = time.perf_counter_ns()
        call(prompt)
        durations.append((time.perf_counter_ns() - start) / 1e3)
    return durations


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None,
                        help="bundle directory (default: the default bundle)")
    parser.add_argument("--rounds", type=int, default=30,
                        help="interleaved rounds (default: 30)")
    parser.add_argument("--calls", type=int, default=2000,
                        help="calls per variant and round (default: 2000)")
    args = parser.parse_args(argv)

    plain = router.load(args.bundle or router.default_bundle_path())
    hooked = router.load(plain.directory, on_pick=lambda record: None)

    def body(prompt):
        scores = plain.scores(prompt)
        return plain._choose_rows(scores[None, :], None, None)[0]

    variants = {
        "pick, on_pick unset": plain.pick,
        "pick body, no check": body,
        "pick, on_pick a no-op": hooked.pick,
    }
    for call in variants.values():
        time_calls(call, PROMPTS, 500)  # warm the memo of token chunks

    samples = {name: [] for name in variants}
    order = list(variants)
    for _ in range(args.rounds):
        random.shuffle(order)
        for name in order:
            samples[name] += time_calls(variants[name], PROMPTS, args.calls)

    print(f"bundle {plain.directory}, {args.rounds} rounds x {args.calls} calls")
    print(f"{'variant':<24} {'p50 µs':>8} {'p90 µs':>8}")
    for name, values in samples.items():
        deciles = statistics.quantiles(values, n=10)
        print(f"{name:<24} {statistics.median(values):>8.2f} {deciles[8]:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
