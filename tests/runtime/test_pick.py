"""Tests of Router.pick on any input a service may pass it."""

import random
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import router
import router._fused
from router._fused import FusedLinearHead
from router._text import clip
from router.errors import PickError, UnknownModelError
from tests.conftest import SMALL_MODELS, small_log_rows

# Every Unicode category, lone surrogates (Cs) and control characters included.
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
# NFD splits a Hangul syllable into three jamo, the most tokens any character
# yields: checked over every code point for this tokenizer.
MAX_TOKENS_PER_CHARACTER = 3


@pytest.fixture(scope="module")
def shared_router(small_bundle):
    return router.load(small_bundle)


def unique_garbage(n: int, seed: int) -> list[str]:
    """Return ``n`` random strings from all of Unicode, surrogates included."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        length = rng.randint(1, 40)
        characters = [chr(rng.randint(0, sys.maxunicode)) for _ in range(length)]
        for position in range(0, length, 7):
            characters[position] = " "
        texts.append("".join(characters))
    return texts


ODD_STRINGS = {
    "empty": "",
    "spaces": "   ",
    "whitespace_mix": " \t\n\r\x0b\x0c\u00a0\u2028\u3000",
    "nul": "\x00",
    "control": "".join(chr(c) for c in range(32)) + "\x7f\x9f",
    "nul_inside": "Write a\x00 python\x00 function",
    "emoji": "😀🚀👩‍👩‍👧‍👦 🇫🇷",
    "cjk": "東京の天気はどうですか 你好，世界",
    "rtl": "مرحبا بالعالم שָׁלוֹם",
    "bidi_controls": "\u202eabc\u202c \u2066x\u2069",
    "lone_high_surrogate": "\ud800",
    "lone_low_surrogate": "\udfff",
    "surrogates_in_text": "a\ud800b \udc00c",
    "reversed_pair": "\udc00\ud800",
    "zero_width": "\u200b\u200c\u200d\ufeff",
    "combining_only": "\u0301\u0302\u0303",
    "private_use": "\ue000\U000f0000\U0010ffff",
    "noncharacters": "\ufffe\uffff",
    "replacement": "\ufffd",
    "long_word": "x" * 5000,
    "one_megabyte_ascii": "word " * 200_000,
    "one_megabyte_no_space": "y" * 1_000_000,
    "one_megabyte_surrogates": "\ud800" * 1_000_000,
    "one_megabyte_emoji": "😀 " * 500_000,
}


@pytest.mark.parametrize("text", ODD_STRINGS.values(), ids=ODD_STRINGS.keys())
def test_pick_odd_string(shared_router, text):
    assert shared_router.pick(text) in SMALL_MODELS


@pytest.mark.parametrize("text", ODD_STRINGS.values(), ids=ODD_STRINGS.keys())
def test_scores_odd_string(shared_router, text):
    scores = shared_router.scores(text)
    assert scores.shape == (len(SMALL_MODELS),)
    assert np.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()


def test_pick_batch_odd_strings(shared_router):
    picks = shared_router.pick_batch(list(ODD_STRINGS.values()))
    assert len(picks) == len(ODD_STRINGS)
    assert set(picks) <= set(SMALL_MODELS)


HUGE = {
    "words": "word " * 200_000,
    "one_chunk": "z" * 1_000_000,
    "hangul_spaced": "각 " * 500_000,
    "hangul": "각" * 1_000_000,
    "symbols_spaced": "! " * 500_000,
    "symbols": "!@#" * 333_334,
    "cjk": "東" * 1_000_000,
    "surrogates_spaced": "\ud800 " * 500_000,
    "mixed": "Solve: 東京 😀 x_1=\ud800 " * 60_000,
}


@pytest.mark.parametrize("text", HUGE.values(), ids=HUGE.keys())
def test_huge_prompt_bounded_tokens(shared_router, text):
    """Check that a 1 MB prompt yields no more tokens than its clip windows allow."""
    featurizer = shared_router.featurizer
    window = featurizer.head_chars + featurizer.tail_chars + 1

    tokens = featurizer.token_ids(text)

    assert len(text) >= 1_000_000
    assert len(tokens) <= MAX_TOKENS_PER_CHARACTER * window


@pytest.mark.parametrize("text", HUGE.values(), ids=HUGE.keys())
def test_huge_prompt_bounded_chunks(small_bundle, monkeypatch, text):
    """Check that the head tokenizes only the clipped text of a 1 MB prompt."""
    fresh = router.load(small_bundle)
    featurizer = fresh.featurizer
    window = featurizer.head_chars + featurizer.tail_chars + 1
    clipped = []

    def spy(*args):
        result = clip(*args)
        clipped.append(result)
        return result

    monkeypatch.setattr(router._fused, "clip", spy)
    name = fresh.pick(text)

    assert name in SMALL_MODELS
    assert len(clipped) == 1
    assert len(clipped[0]) <= window
    # Chunks are separated by whitespace, so at most every other character
    # starts one.
    assert len(clipped[0].split()) <= (window + 1) // 2


@pytest.mark.parametrize(
    "prompt",
    [None, b"bytes", bytearray(b"bytes"), memoryview(b"m"), 1, 1.5, True, 3j,
     {"role": "user", "content": "hi"}, {"a": 1}, object(), np.array(["hi"]),
     {"hi"}],
    ids=["none", "bytes", "bytearray", "memoryview", "int", "float", "bool",
         "complex", "message_dict", "dict", "object", "ndarray", "set"],
)
def test_pick_wrong_type(shared_router, prompt):
    with pytest.raises(TypeError, match=r"prompt must be str, a list of str \(turns\)"):
        shared_router.pick(prompt)


@pytest.mark.parametrize(
    ("prompt", "match"),
    [
        (["turn", 1], "turn 1 is int"),
        ([["nested"]], "turn 0 is list"),
        ([None], "turn 0 is NoneType"),
        ([{"role": "user", "content": b"x"}], "content of type bytes"),
        ([{"role": "user", "content": {"text": "x"}}], "content of type dict"),
    ],
    ids=["int_turn", "nested_list", "none_turn", "bytes_content", "dict_content"],
)
def test_pick_wrong_turn(shared_router, prompt, match):
    with pytest.raises(TypeError, match=match):
        shared_router.pick(prompt)


def test_pick_bytes_decode_hint(shared_router):
    with pytest.raises(TypeError, match=r"Decode bytes first"):
        shared_router.pick(b"hello")


@pytest.mark.parametrize(
    ("quality", "error", "match"),
    [
        ("0.9", TypeError, "quality must be a real number such as 0.95.*got '0.9'"),
        (True, TypeError, "got True of type bool"),
        ([0.9], TypeError, "of type list"),
        (np.array(0.9), TypeError, "of type ndarray"),
        (float("nan"), ValueError, "quality must be between 0 and 1.5"),
        (float("inf"), ValueError, "got inf"),
        (-0.01, ValueError, "got -0.01"),
        (1.51, ValueError, "got 1.51"),
    ],
    ids=["str", "bool", "list", "ndarray", "nan", "inf", "negative", "above_max"],
)
def test_pick_invalid_quality(shared_router, quality, error, match):
    with pytest.raises(error, match=match):
        shared_router.pick("What is 2 plus 2?", quality=quality)


def test_pick_bool_quality_after_cached(shared_router):
    """Check that True is rejected after 1.0, which equals True, was cached."""
    shared_router.pick("What is 2 plus 2?", quality=1.0)

    with pytest.raises(TypeError, match="of type bool"):
        shared_router.pick("What is 2 plus 2?", quality=True)


@pytest.mark.parametrize(
    "quality", [np.float32(0.9), np.float64(0.9), np.int64(1), 1],
    ids=["float32", "float64", "int64", "int"],
)
def test_pick_numeric_quality(shared_router, quality):
    assert shared_router.pick("What is 2 plus 2?", quality=quality) in SMALL_MODELS


@pytest.mark.parametrize(
    ("allowed", "error", "match"),
    [
        ([], ValueError, "allowed is empty; name at least one of"),
        (set(), ValueError, "allowed is empty"),
        (iter([]), ValueError, "allowed is empty"),
        (["gpt-9"], UnknownModelError, r"does not know: \['gpt-9'\]; it routes to"),
        (["cheap-model", "gpt-9"], UnknownModelError, r"\['gpt-9'\]"),
        ("", UnknownModelError, r"\[''\]"),
        (5, TypeError, "allowed must be a model name or an iterable.*got int"),
        (b"cheap-model", TypeError, "got bytes"),
        ([1], TypeError, "allowed must contain model names .*got 1 of type int"),
        ([["cheap-model"]], TypeError, "of type list"),
        ([None], TypeError, "got None"),
    ],
    ids=["empty_list", "empty_set", "empty_iterator", "unknown", "one_unknown",
         "empty_name", "int", "bytes", "int_name", "nested_list", "none_name"],
)
def test_pick_invalid_allowed(shared_router, allowed, error, match):
    with pytest.raises(error, match=match):
        shared_router.pick("What is 2 plus 2?", allowed=allowed)


def test_unknown_model_is_value_error(shared_router):
    with pytest.raises(ValueError, match="gpt-9"):
        shared_router.pick("hi", allowed=["gpt-9"])


@pytest.mark.parametrize(
    "allowed",
    ["mid-model", ["mid-model"], ("mid-model",), {"mid-model"}, {"mid-model": 1},
     iter(["mid-model"])],
    ids=["str", "list", "tuple", "set", "dict_keys", "iterator"],
)
def test_pick_allowed_forms(shared_router, allowed):
    assert shared_router.pick("What is 2 plus 2?", allowed=allowed) == "mid-model"


@pytest.mark.parametrize(
    "prompts",
    ["one prompt", b"bytes", None, 5, {"role": "user", "content": "hi"},
     {"a", "b"}, frozenset({"a"})],
    ids=["str", "bytes", "none", "int", "message_dict", "set", "frozenset"],
)
def test_pick_batch_wrong_type(shared_router, prompts):
    with pytest.raises(TypeError, match="pick_batch expects a list of prompts; got"):
        shared_router.pick_batch(prompts)


def test_pick_batch_str_names_pick(shared_router):
    with pytest.raises(TypeError, match=r"Use pick\(\) for a single prompt"):
        shared_router.pick_batch("one prompt")


def test_pick_batch_bad_item(shared_router):
    with pytest.raises(TypeError, match="got NoneType"):
        shared_router.pick_batch(["fine", None])


def test_pick_batch_empty(shared_router):
    assert shared_router.pick_batch([]) == []


def test_pick_batch_generator(shared_router):
    texts = ["What is 2 plus 3?", "Write a python function."]

    result = shared_router.pick_batch(text for text in texts)

    assert result == [shared_router.pick(text) for text in texts]


def test_engine_failure_is_pick_error(small_bundle, monkeypatch):
    """Check that a NumPy failure inside scoring reaches the caller as PickError."""
    fresh = router.load(small_bundle)

    def broken(text):
        return np.zeros(2)[[5]]

    monkeypatch.setattr(fresh._fused, "scores_one", broken)
    with pytest.raises(PickError, match=r"IndexError.*Send the prompt to a default"):
        fresh.pick("What is 2 plus 2?")


def test_pick_error_is_router_error(small_bundle, monkeypatch):
    fresh = router.load(small_bundle)

    def broken(texts):
        raise FloatingPointError("overflow")

    monkeypatch.setattr(fresh._fused, "scores_batch", broken)
    with pytest.raises(router.RouterError, match="overflow"):
        fresh.pick_batch(["a", "b"])


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_extreme_logits_no_overflow(shared_router, activation):
    """Check that logits far below -88 score near 0 without an overflow warning.

    Rare tokens get such logits in real bundles, and a RuntimeWarning in a
    service that treats warnings as errors would fail the pick.
    """
    featurizer = shared_router.featurizer
    table = np.zeros((featurizer.pad_id + 1, 3), dtype=np.float32)
    table[featurizer.token_ids("vargas"), 0] = -1000.0
    head = FusedLinearHead(featurizer, table, np.zeros(3, np.float32), activation)

    one = head.scores_one("vargas")
    batch = head.scores_batch(["vargas", "vargas vargas"])

    assert np.isfinite(one).all()
    assert one[0] < 1e-30
    assert np.array_equal(batch[0], one)
    assert np.isfinite(batch).all()


@settings(max_examples=300, deadline=None)
@given(text=st.text(ANY_CHARACTER, max_size=300))
def test_pick_any_text_property(shared_router, text):
    assert shared_router.pick(text) in shared_router.models


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(st.text(ANY_CHARACTER, max_size=120), max_size=30))
def test_pick_batch_property(shared_router, texts):
    """Check that a batch gives exactly the picks of one call per prompt."""
    assert shared_router.pick_batch(texts) == [shared_router.pick(t) for t in texts]


@settings(max_examples=50, deadline=None)
@given(texts=st.lists(st.text(ANY_CHARACTER, max_size=120), min_size=1, max_size=30),
       quality=st.floats(0.0, 1.0))
def test_pick_batch_quality_property(shared_router, texts, quality):
    expected = [shared_router.pick(t, quality=quality) for t in texts]
    assert shared_router.pick_batch(texts, quality=quality) == expected


def test_threads_match_single_thread(small_bundle):
    """Check that 8 threads sharing one Router pick as one thread does.

    Half of the prompts are random strings the router has never seen, so the
    threads grow its chunk table at the same time.
    """
    known = [row["prompt"] for row in small_log_rows()][::3]
    prompts = known * 10 + unique_garbage(300, seed=1)
    single = router.load(small_bundle)
    expected = [single.pick(text) for text in prompts]
    shared = router.load(small_bundle)
    barrier = threading.Barrier(8)

    def work(seed: int) -> dict:
        order = list(range(len(prompts)))
        random.Random(seed).shuffle(order)
        barrier.wait()
        picks = {i: shared.pick(prompts[i]) for i in order}
        batch = shared.pick_batch([prompts[i] for i in order[:200]])
        return {"picks": picks, "batch": batch, "order": order[:200]}

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(work, range(8)))
    finally:
        sys.setswitchinterval(interval)

    n_picks = sum(len(r["picks"]) + len(r["batch"]) for r in results)
    assert n_picks >= 5000
    for result in results:
        assert [result["picks"][i] for i in range(len(prompts))] == expected
        assert result["batch"] == [expected[i] for i in result["order"]]
