"""Featurize prompts with a MiniLM sentence encoder exported to ONNX.

The runtime needs only numpy, onnxruntime and the Hugging Face ``tokenizers``
library, and does not import torch. Training computes its features with
sentence-transformers on torch but tokenizes through :class:`HeadTailTokenizer`
from this module, so both sides feed the encoder the same token ids, and the
embeddings agree to float32 rounding.
"""

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from router._text import clip
from router.errors import BundleError, PickError

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'learned-router[minilm]'"

# Encoder inputs this featurizer can fill in. BERT-style encoders take all three,
# and some other encoders take no token_type_ids.
_KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_INPUT_DTYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def _onnxruntime_errors() -> tuple[type[Exception], ...]:
    # onnxruntime raises its own exception classes, one per status code (Fail,
    # InvalidArgument, RuntimeException, ...). In onnxruntime 1.32 they all derive
    # from Exception directly, so they are collected here rather than listed.
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    errors = [
        value
        for value in vars(state).values()
        if isinstance(value, type) and issubclass(value, Exception)
    ]
    return tuple(errors)


_ORT_ERRORS = _onnxruntime_errors()


def _import_tokenizers():
    try:
        import tokenizers
    except ImportError as e:
        msg = (
            "The MiniLM featurizer needs the Hugging Face 'tokenizers' package, "
            f"which is not installed. Install it with: {INSTALL_HINT}"
        )
        raise BundleError(msg) from e
    return tokenizers


class HeadTailTokenizer:
    """Tokenizer that keeps the head and the tail of a text over ``max_tokens``.

    It loads a ``tokenizer.json`` and turns off the truncation and padding stored
    in it. A text whose token ids, special tokens included, number more than
    ``max_tokens`` keeps the leading special tokens, its first ``head_tokens``
    content tokens, as many of its last content tokens as fit, and the trailing
    special tokens. For BERT tokenizers that is
    ``[CLS] head... tail... [SEP]``.

    Parameters
    ----------
    tokenizer_path : Path
        The ``tokenizer.json`` file.
    max_tokens : int
        The maximum number of token ids per text, special tokens included. It must
        not exceed the encoder's number of position embeddings (512 for MiniLM).
    head_tokens : int
        The number of content tokens kept from the start of a truncated text.

    Raises
    ------
    BundleError
        If ``tokenizers`` is not installed, or the file is missing or invalid.
    ValueError
        If ``max_tokens`` or ``head_tokens`` leave no room for the tail.
    """

    def __init__(self, tokenizer_path: Path, *, max_tokens: int, head_tokens: int):
        tokenizers = _import_tokenizers()
        tokenizer_path = Path(tokenizer_path)
        if not tokenizer_path.is_file():
            msg = f"Tokenizer file not found: {tokenizer_path}. Re-export the bundle."
            raise BundleError(msg)
        try:
            tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_path))
        except Exception as e:
            # The Rust side raises a plain Exception for any parse failure.
            msg = (
                f"Failed to load the tokenizer file {tokenizer_path}: {e}. "
                "The file is corrupted or was not written by the tokenizers "
                "library. Re-export the bundle."
            )
            raise BundleError(msg) from e

        # The file of all-MiniLM-L6-v2 truncates to 128 tokens and pads to 128,
        # which would silently differ from the head and tail kept below.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self.prefix_ids, self.suffix_ids = self._find_special_ids()

        n_special = len(self.prefix_ids) + len(self.suffix_ids)
        _check_int("max_tokens", max_tokens, minimum=n_special + 1)
        _check_int("head_tokens", head_tokens, minimum=0)
        if head_tokens > max_tokens - n_special - 1:
            msg = (
                f"head_tokens must be at most max_tokens - {n_special + 1} = "
                f"{max_tokens - n_special - 1}, so that the tail of a long text keeps "
                f"at least one token; got head_tokens={head_tokens} and "
                f"max_tokens={max_tokens}"
            )
            raise ValueError(msg)
        self.max_tokens = max_tokens
        self.head_tokens = head_tokens
        self._max_content = max_tokens - n_special

    def _find_special_ids(self) -> tuple[list[int], list[int]]:
        # The post-processor of the file decides which special tokens wrap a text.
        # Encoding one probe text with and without them shows which go before and
        # which after, whatever the tokenizer.
        probe = "a"
        with_special = self._tokenizer.encode(probe).ids
        content = self._tokenizer.encode(probe, add_special_tokens=False).ids
        for start in range(len(with_special) - len(content) + 1):
            if with_special[start : start + len(content)] == content:
                end = start + len(content)
                return with_special[:start], with_special[end:]
        msg = (
            "The tokenizer's post-processor does not place special tokens only "
            f"before and after a text: probe {probe!r} gave {with_special}, and its "
            f"content alone {content}. The MiniLM featurizer supports only "
            "single-sequence templates such as [CLS] $A [SEP]."
        )
        raise BundleError(msg)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Tokenize texts into token ids with special tokens, truncated as above.

        Parameters
        ----------
        texts : sequence of str
            Texts, already clipped by characters.

        Returns
        -------
        list of list of int
            One list of token ids per text, of at most ``max_tokens`` ids.
        """
        if len(texts) == 1:
            # encode skips the thread-pool dispatch of encode_batch, which gains
            # nothing for one text.
            encodings = [self._tokenizer.encode(texts[0], add_special_tokens=False)]
        else:
            encodings = self._tokenizer.encode_batch(
                list(texts), add_special_tokens=False
            )
        return [self._wrap(encoding.ids) for encoding in encodings]

    def _wrap(self, content: list[int]) -> list[int]:
        if len(content) > self._max_content:
            n_tail = self._max_content - self.head_tokens
            content = content[: self.head_tokens] + content[-n_tail:]
        return self.prefix_ids + content + self.suffix_ids


def pad_batch(ids: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
    """Pad token ids to the longest in the batch and build the encoder inputs.

    Parameters
    ----------
    ids : sequence of sequence of int
        Token ids per text, from :meth:`HeadTailTokenizer.encode`.

    Returns
    -------
    dict of str to numpy.ndarray
        ``input_ids``, ``attention_mask`` and ``token_type_ids``, each int64 of
        shape (n_texts, longest). Padding uses id 0 and attention mask 0, and the
        attention mask is what keeps padding out of the embeddings. Token type ids
        are all 0 because every text is a single segment.
    """
    longest = max(len(row) for row in ids)
    input_ids = np.zeros((len(ids), longest), dtype=np.int64)
    attention_mask = np.zeros((len(ids), longest), dtype=np.int64)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = row
        attention_mask[i, : len(row)] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": np.zeros_like(input_ids),
    }


def mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Average token embeddings over the tokens the attention mask keeps.

    This is the mean pooling of sentence-transformers' ``Pooling`` module,
    including its lower bound of 1e-9 on the token count.

    Parameters
    ----------
    hidden : numpy.ndarray
        Token embeddings of shape (n_texts, n_tokens, dim).
    attention_mask : numpy.ndarray
        Shape (n_texts, n_tokens), 1 for real tokens and 0 for padding.

    Returns
    -------
    numpy.ndarray
        Float32 array of shape (n_texts, dim).
    """
    mask = attention_mask.astype(np.float32)[:, :, None]
    summed = (hidden.astype(np.float32) * mask).sum(axis=1)
    counts = np.maximum(mask.sum(axis=1), np.float32(1e-9))
    return summed / counts


def l2_normalize(embeddings: np.ndarray) -> np.ndarray:
    """Scale each row to unit L2 norm, as ``torch.nn.functional.normalize`` does.

    Rows with a norm below 1e-12 are divided by 1e-12 instead, so a zero row
    stays zero.
    """
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.maximum(norms, np.float32(1e-12))


class MiniLMFeaturizer:
    """Featurizer that embeds prompt texts with a MiniLM encoder in ONNX format.

    Each text is clipped by characters with :func:`router._text.clip`, tokenized
    by :class:`HeadTailTokenizer`, run through the encoder with onnxruntime on the
    CPU, mean-pooled over the attention mask and, if ``normalize``, scaled to unit
    L2 norm. The steps match the sentence-transformers model that
    ``training.encoder.embed_minilm`` runs at training time.

    Parameters
    ----------
    encoder_path : Path
        The ONNX encoder, with inputs ``input_ids`` and ``attention_mask`` (and
        ``token_type_ids`` if the model takes them) and the token embeddings of
        shape (batch, sequence, dim) as first output.
    tokenizer_path : Path
        The ``tokenizer.json`` the encoder was trained with.
    head_chars, tail_chars : int
        The character windows of :func:`router._text.clip`.
    max_tokens : int, default 256
        The maximum number of tokens per text, special tokens included. The
        default is the ``max_seq_length`` of all-MiniLM-L6-v2.
    head_tokens : int, default 32
        The number of content tokens kept from the start of a text longer than
        ``max_tokens``. The rest of the room goes to the end of the text, where
        the latest request sits.
    normalize : bool, default True
        Whether to scale embeddings to unit L2 norm. all-MiniLM-L6-v2 ends with
        a ``Normalize`` module, so its embeddings are normalized.
    intra_op_num_threads : int, default 1
        The number of onnxruntime threads per encoder call. One thread suits a
        server that runs picks concurrently, because each pick then takes one
        core. Use 0 to let onnxruntime choose.

    Attributes
    ----------
    dim : int
        The embedding size (384 for all-MiniLM-L6-v2).

    Raises
    ------
    BundleError
        If a file is missing or invalid, or ``tokenizers`` is not installed.
    ValueError
        If a size argument is out of range.

    Examples
    --------
    >>> featurizer = MiniLMFeaturizer(
    ...     bundle / "encoder.onnx", bundle / "tokenizer.json",
    ...     head_chars=1000, tail_chars=3000,
    ... )  # doctest: +SKIP
    >>> featurizer.transform_one("Write a haiku about rain.").shape  # doctest: +SKIP
    (384,)
    """

    kind = "minilm"

    def __init__(
        self,
        encoder_path: Path,
        tokenizer_path: Path,
        *,
        head_chars: int,
        tail_chars: int,
        max_tokens: int = 256,
        head_tokens: int = 32,
        normalize: bool = True,
        intra_op_num_threads: int = 1,
    ):
        _check_int("head_chars", head_chars, minimum=0)
        _check_int("tail_chars", tail_chars, minimum=0)
        _check_int("intra_op_num_threads", intra_op_num_threads, minimum=0)
        self.encoder_path = Path(encoder_path)
        self.head_chars = head_chars
        self.tail_chars = tail_chars
        self.normalize = bool(normalize)
        self.tokenizer = HeadTailTokenizer(
            tokenizer_path, max_tokens=max_tokens, head_tokens=head_tokens
        )
        self._session = self._load_session(intra_op_num_threads)
        self._input_dtypes = self._check_inputs()
        self.dim = self._find_dim()
        logger.debug(
            "Loaded MiniLM encoder %s (dim %d, %d intra-op threads)",
            self.encoder_path,
            self.dim,
            intra_op_num_threads,
        )

    @property
    def max_tokens(self) -> int:
        """The maximum number of tokens per text, special tokens included."""
        return self.tokenizer.max_tokens

    @property
    def head_tokens(self) -> int:
        """The number of content tokens kept from the start of a long text."""
        return self.tokenizer.head_tokens

    def _load_session(self, intra_op_num_threads: int) -> ort.InferenceSession:
        if not self.encoder_path.is_file():
            msg = f"Encoder file not found: {self.encoder_path}. Re-export the bundle."
            raise BundleError(msg)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_num_threads
        options.inter_op_num_threads = 1
        # Errors reach the caller as exceptions, so onnxruntime's own log lines
        # below error level would only repeat them on stderr.
        options.log_severity_level = 3
        try:
            return ort.InferenceSession(
                str(self.encoder_path), options, providers=["CPUExecutionProvider"]
            )
        except _ORT_ERRORS as e:
            msg = (
                f"onnxruntime failed to load the encoder {self.encoder_path}: {e}. "
                "The file is corrupted or not an ONNX model. Re-export the bundle "
                "with training.encoder.export_minilm."
            )
            raise BundleError(msg) from e

    def _check_inputs(self) -> dict[str, type]:
        dtypes = {}
        for model_input in self._session.get_inputs():
            if model_input.name not in _KNOWN_INPUTS:
                msg = (
                    f"The encoder {self.encoder_path} has input "
                    f"{model_input.name!r}, but the MiniLM featurizer supplies only "
                    f"{', '.join(_KNOWN_INPUTS)}. Re-export the bundle with "
                    "training.encoder.export_minilm."
                )
                raise BundleError(msg)
            if model_input.type not in _INPUT_DTYPES:
                msg = (
                    f"The encoder {self.encoder_path} takes {model_input.name!r} as "
                    f"{model_input.type}; expected tensor(int64) or tensor(int32)."
                )
                raise BundleError(msg)
            dtypes[model_input.name] = _INPUT_DTYPES[model_input.type]
        if "input_ids" not in dtypes:
            msg = f"The encoder {self.encoder_path} has no 'input_ids' input."
            raise BundleError(msg)
        return dtypes

    def _find_dim(self) -> int:
        shape = self._session.get_outputs()[0].shape
        if len(shape) != 3:
            msg = (
                f"The first output of the encoder {self.encoder_path} has shape "
                f"{shape}; expected token embeddings of shape (batch, sequence, dim)."
            )
            raise BundleError(msg)
        if isinstance(shape[2], int):
            return shape[2]
        # The exporter left the size symbolic, so one empty text measures it.
        return int(self._embed([""]).shape[1])

    def transform(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed prompt texts.

        Parameters
        ----------
        texts : sequence of str
            Texts from :func:`router._text.prompt_text`. An empty string is
            valid and gives the embedding of the special tokens alone.
        batch_size : int, default 32
            The number of texts per encoder call. Texts are sorted by length
            first, so each batch pads to a similar length.

        Returns
        -------
        numpy.ndarray
            Float32 array of shape (len(texts), dim), in the order of ``texts``.

        Raises
        ------
        TypeError
            If ``texts`` is not a sequence of str.
        PickError
            If onnxruntime fails to run the encoder.
        """
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            msg = (
                "texts must be a list of str; got "
                f"{type(texts).__name__}. Use transform_one for a single text."
            )
            raise TypeError(msg)
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                msg = (
                    f"texts[{position}] is {type(text).__name__}, not str. Turn "
                    "prompts into text with router._text.prompt_text first."
                )
                raise TypeError(msg)
        _check_int("batch_size", batch_size, minimum=1)
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)

        # Clipping first bounds the tokenizer's work, and sorting by clipped length
        # keeps padding small.
        clipped = [clip(text, self.head_chars, self.tail_chars) for text in texts]
        order = sorted(range(len(clipped)), key=lambda i: len(clipped[i]))
        embeddings = np.empty((len(clipped), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            embeddings[rows] = self._embed([clipped[i] for i in rows])
        return embeddings

    def transform_one(self, text: str) -> np.ndarray:
        """Embed one prompt text.

        Parameters
        ----------
        text : str
            A text from :func:`router._text.prompt_text`.

        Returns
        -------
        numpy.ndarray
            Float32 array of shape (dim,).

        Raises
        ------
        TypeError
            If ``text`` is not a str.
        PickError
            If onnxruntime fails to run the encoder.
        """
        if not isinstance(text, str):
            msg = (
                f"text must be str; got {type(text).__name__}. Turn prompts into "
                "text with router._text.prompt_text first."
            )
            raise TypeError(msg)
        clipped = clip(text, self.head_chars, self.tail_chars)
        return self._embed([clipped])[0]

    def _embed(self, clipped: list[str]) -> np.ndarray:
        inputs = pad_batch(self.tokenizer.encode(clipped))
        feed = {
            name: inputs[name].astype(dtype, copy=False)
            for name, dtype in self._input_dtypes.items()
        }
        try:
            hidden = self._session.run(None, feed)[0]
        except _ORT_ERRORS as e:
            shape = inputs["input_ids"].shape
            msg = (
                f"onnxruntime failed to run the encoder {self.encoder_path.name} on "
                f"a batch of {shape[0]} texts of up to {shape[1]} tokens: {e}. "
                "If the token count exceeds the encoder's position embeddings, "
                "lower max_tokens in the bundle manifest. Otherwise re-export the "
                "bundle with training.encoder.export_minilm."
            )
            raise PickError(msg) from e

        embeddings = mean_pool(hidden, inputs["attention_mask"])
        if self.normalize:
            embeddings = l2_normalize(embeddings)
        return embeddings.astype(np.float32, copy=False)


def _check_int(name: str, value, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        msg = f"{name} must be an int; got {type(value).__name__} {value!r}"
        raise TypeError(msg)
    if value < minimum:
        msg = f"{name} must be at least {minimum}; got {value}"
        raise ValueError(msg)
