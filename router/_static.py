"""Static featurizer: the mean of distilled token vectors, in pure Python and NumPy.

The token vectors are distilled offline from the pipeline's sentence embedder
(model2vec), so a pick needs no transformer. Tokenization follows the BERT
WordPiece scheme of that embedder's vocabulary: lowercase, strip accents, split on
whitespace and punctuation, then greedy longest-match subwords. Whitespace-split
chunks are memoized, so a chunk seen before costs one dict lookup. That keeps a
1,500-character prompt in the tens of microseconds.
"""

import itertools
import re
import unicodedata

import numpy as np

from router._text import clip

# BERT treats every ASCII symbol as punctuation, "_" included, so each one becomes
# a token of its own; runs of letters and digits stay together.
_PIECES = re.compile(r"[^\W_]+|[^\w\s]|_")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd\u200b-\u200f\ufeff]")
# CJK ideographs are tokens of their own in BERT vocabularies.
_CJK = re.compile(
    "([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df"
    "\U0002a700-\U0002ebef\U0002f800-\U0002fa1f])"
)
# BERT's WordPiece turns longer words into [UNK].
_MAX_WORD_CHARS = 100
# Memoized chunks beyond this count, or beyond this many characters and token ids
# in all, are computed anew on each use, so a stream of unique garbage cannot grow
# the process without bound. A chunk can be 1,500 characters and as many ids long,
# so the count alone would allow gigabytes.
_MAX_CACHED_CHUNKS = 200_000
_MAX_CACHED_ITEMS = 8_000_000


class StaticFeaturizer:
    """Mean of static token vectors over a clipped prompt.

    Parameters
    ----------
    tokens : list of str
        The WordPiece vocabulary, in row order of ``vectors``; continuation pieces
        start with ``##``. Must contain ``[UNK]``.
    vectors : ndarray of shape (n_tokens, dim), optional
        One vector per token, stored as float16 and used as float32. Bundles
        whose head reads token ids directly (``pick.onnx``) carry no vectors;
        then only :meth:`token_ids` works.
    head_chars, tail_chars : int
        The clip windows applied before tokenizing; see :func:`router._text.clip`.
    """

    kind = "static"

    def __init__(self, tokens, vectors=None, *, head_chars: int, tail_chars: int):
        if vectors is not None and len(tokens) != len(vectors):
            msg = f"{len(tokens)} tokens but {len(vectors)} vectors; they must match"
            raise ValueError(msg)
        self.head_chars = int(head_chars)
        self.tail_chars = int(tail_chars)
        self.vectors = None
        self.dim = 0
        if vectors is not None:
            self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            self.dim = self.vectors.shape[1]
        # Id of the all-zero row that fused token-id graphs append for padding.
        self.pad_id = len(tokens)
        self._ids = {token: i for i, token in enumerate(tokens)}
        if "[UNK]" not in self._ids:
            msg = "the static vocabulary has no [UNK] token"
            raise ValueError(msg)
        self._unk = self._ids["[UNK]"]
        self._chunks = _ChunkCache(self._tokenize_chunk)
        # Whole-word vocabulary entries are the common case: seed them so a first
        # pick does not pay for WordPiece on every ordinary word.
        for token, i in self._ids.items():
            if not token.startswith("##") and token.isalnum() and token.islower():
                self._chunks[token] = (i,)

    def token_ids(self, text: str) -> list[int]:
        """Return the token ids of ``text`` after clipping, in order."""
        chunks = clip(text, self.head_chars, self.tail_chars).lower().split()
        return list(itertools.chain.from_iterable(map(self._chunks.__getitem__, chunks)))

    def token_feeds(self, texts) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``token_ids`` and ``token_counts`` inputs of ``pick.onnx``.

        ``token_ids`` is int64 ``[n, length]``, padded with :attr:`pad_id`;
        ``token_counts`` is float32 ``[n, 1]``, at least 1 so an empty text's
        mean stays finite.
        """
        rows = [self.token_ids(t) for t in texts]
        width = max(1, max((len(r) for r in rows), default=0))
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = r
        counts = np.array([[max(len(r), 1)] for r in rows], dtype=np.float32)
        return ids, counts

    def transform_one(self, text: str) -> np.ndarray:
        """Return the feature vector of one text, float32 of shape ``(dim,)``.

        A text without tokens, such as an empty or whitespace-only one, maps to the
        zero vector.
        """
        self._require_vectors()
        ids = self.token_ids(text)
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        return self.vectors[ids].mean(axis=0)

    def transform(self, texts) -> np.ndarray:
        """Return the feature matrix of many texts, float32 of shape ``(n, dim)``."""
        self._require_vectors()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = self.token_ids(text)
            if ids:
                out[row] = self.vectors[ids].mean(axis=0)
        return out

    def _require_vectors(self) -> None:
        if self.vectors is None:
            msg = (
                "this static featurizer has no token vectors (its bundle reads token "
                "ids with pick.onnx); use token_ids()"
            )
            raise ValueError(msg)

    def _tokenize_chunk(self, chunk: str) -> tuple[int, ...]:
        # Reached once per distinct whitespace-free chunk; the cache serves repeats.
        if not chunk.isascii():
            chunk = _CONTROL.sub("", chunk)
            chunk = unicodedata.normalize("NFD", chunk)
            chunk = "".join(c for c in chunk if unicodedata.category(c) != "Mn")
            chunk = _CJK.sub(r" \1 ", chunk)
        else:
            chunk = _CONTROL.sub("", chunk)
        ids: list[int] = []
        for piece in _PIECES.findall(chunk):
            ids.extend(self._wordpiece(piece))
        return tuple(ids)

    def _wordpiece(self, word: str) -> list[int]:
        if len(word) > _MAX_WORD_CHARS:
            return [self._unk]
        vocab = self._ids
        ids = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = vocab.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return [self._unk]
            ids.append(found)
            start = end
        return ids


class _ChunkCache(dict):
    """Chunk-to-token-ids memo that computes misses and stops growing at a cap."""

    def __init__(self, compute):
        super().__init__()
        self._compute = compute
        self._items = 0

    def __missing__(self, chunk):
        ids = self._compute(chunk)
        # A race between threads stores the same tuple twice and may miscount
        # the items a little, which is harmless.
        items = len(chunk) + len(ids)
        if len(self) < _MAX_CACHED_CHUNKS and self._items + items <= _MAX_CACHED_ITEMS:
            self._items += items
            self[chunk] = ids
        return ids
