"""A linear head folded into the static token vectors, evaluated in NumPy.

The static featurizer's output is the mean of token vectors and a logistic head
is affine in it, so the head's logits equal the mean over the prompt's tokens of
per-token logits plus a bias. The bundle stores those per-token logits
(``token_scores.npy``, one row per token plus a zero padding row); ``pick.onnx``
holds the same computation as an ONNX graph for other runtimes, and export checks
that both agree with the fitted model.

Each whitespace-separated chunk of a prompt gets a column holding the sum of its
tokens' logits and its token count, computed once and memoized. A pick is then one
dict lookup per chunk, one gather of the chunk columns and one sum, with no Python
loop over tokens. The table is stored one output per row, so the sum of a prompt's
columns runs along contiguous memory; NumPy sums a segment there several times
faster than across the rows of a chunk-per-row table.
"""

import sys
import threading

import numpy as np

from router._static import StaticFeaturizer
from router._text import clip

# Memoized chunks beyond this count, or beyond this many characters in all, are
# scored anew on each use instead, so a stream of unique garbage cannot grow the
# process without bound. A chunk can be 1,500 characters long, so the count alone
# would allow gigabytes of dict keys.
_MAX_COLUMNS = 500_000
_MAX_KEY_CHARS = 8_000_000
# Logits are raised to this before the sigmoid; see _activate.
_MIN_LOGIT = np.float32(-80.0)

# The memo stores each chunk's column number as native-endian int32 bytes, so
# joining the lookups of a prompt's chunks builds its index array in one C call
# instead of converting a Python list of ints element by element.
_ID_DTYPE = np.dtype(np.int32)
# Column 0 is all zeros: an empty prompt sums it, so no segment is empty.
_EMPTY_ID = (0).to_bytes(_ID_DTYPE.itemsize, sys.byteorder)
_FIRST = np.zeros(1, dtype=np.intp)


class FusedLinearHead:
    """Score prompts with per-token logits of a logistic head.

    Parameters
    ----------
    featurizer : StaticFeaturizer
        Supplies tokenization and the clip windows.
    token_scores : ndarray of shape (n_tokens + 1, n_outputs)
        Per-token logits; the last row is the zero padding row.
    bias : ndarray of shape (n_outputs,)
    activation : {"softmax", "sigmoid"}
    """

    def __init__(self, featurizer: StaticFeaturizer, token_scores: np.ndarray,
                 bias: np.ndarray, activation: str):
        if activation not in ("softmax", "sigmoid"):
            msg = f"activation must be 'softmax' or 'sigmoid'; got {activation!r}"
            raise ValueError(msg)
        self.featurizer = featurizer
        self.token_scores = np.ascontiguousarray(token_scores, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.activation = activation
        n_outputs = self.token_scores.shape[1]
        if self.bias.shape != (n_outputs,):
            msg = f"bias has shape {self.bias.shape}; expected ({n_outputs},)"
            raise ValueError(msg)

        self._lock = threading.Lock()
        self._columns: dict[str, bytes] = {}
        # Column j contains chunk j's summed token logits and, in the last row,
        # its token count. Column 0 is the empty chunk.
        self._sums = np.zeros((n_outputs + 1, 1024), dtype=np.float32)
        self._used = 1
        self._key_chars = 0
        self._bias_column = self.bias[:, None]

    def scores_one(self, text: str) -> np.ndarray:
        """Return the head's outputs for one text, shape ``(n_outputs,)``."""
        chunks = clip(text, self.featurizer.head_chars,
                      self.featurizer.tail_chars).lower().split()
        try:
            ids = b"".join(map(self._columns.__getitem__, chunks))
        except KeyError:
            ids = self._add(chunks)
            if ids is None:
                return self._activate(self._direct_sum(chunks)[:, None])[0]
        return self._activate(self._segment_sums(ids or _EMPTY_ID, _FIRST))[0]

    def scores_batch(self, texts: list[str]) -> np.ndarray:
        """Return the head's outputs for many texts, shape ``(n, n_outputs)``."""
        # Slices of a few hundred prompts keep the gathered columns in cache.
        step = 256
        if len(texts) > step:
            return np.concatenate([self.scores_batch(texts[i:i + step])
                                   for i in range(0, len(texts), step)])
        head, tail = self.featurizer.head_chars, self.featurizer.tail_chars
        lookup = self._columns.__getitem__
        parts: list[bytes] = []
        starts: list[int] = []
        n_ids = 0
        unmemoized = {}
        for i, text in enumerate(texts):
            chunks = clip(text, head, tail).lower().split()
            try:
                ids = b"".join(map(lookup, chunks))
            except KeyError:
                ids = self._add(chunks)
                if ids is None:
                    unmemoized[i] = self._direct_sum(chunks)
                    ids = b""
            ids = ids or _EMPTY_ID
            starts.append(n_ids)
            n_ids += len(ids) // _ID_DTYPE.itemsize
            parts.append(ids)
        summed = self._segment_sums(b"".join(parts), starts)
        for i, values in unmemoized.items():
            summed[:, i] = values
        return self._activate(summed)

    def _segment_sums(self, ids: bytes, starts) -> np.ndarray:
        """Sum the columns ``ids`` per segment, shape ``(n_outputs + 1, n_segments)``.

        Segment ``k`` runs from ``starts[k]`` to the next start; none is empty.
        """
        # Read the table after the lookups: a column id seen in the dict is always
        # in the table published before it.
        gathered = self._sums.take(np.frombuffer(ids, dtype=_ID_DTYPE), axis=1)
        # scores_one and scores_batch both sum here, so one prompt gets the same
        # float32 rounding alone as in a batch.
        return np.add.reduceat(gathered, starts, axis=1)

    def _activate(self, summed: np.ndarray) -> np.ndarray:
        """Turn segment sums ``(n_outputs + 1, n)`` into outputs ``(n, n_outputs)``."""
        logits = summed[:-1] / np.maximum(summed[-1], 1.0) + self._bias_column
        if self.activation == "sigmoid":
            # Below -80, exp(-logit) would overflow float32 and warn, while the
            # sigmoid is already under 1e-34.
            logits = np.maximum(logits, _MIN_LOGIT)
            return np.ascontiguousarray((1.0 / (1.0 + np.exp(-logits))).T)
        # The softmax sums along rows in C order, which fixes its float32 rounding.
        logits = np.ascontiguousarray(logits.T)
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        return weights / weights.sum(axis=1, keepdims=True)

    def _add(self, chunks: list[str]) -> bytes | None:
        """Return the column ids of ``chunks``, creating columns for new chunks.

        Returns None once the table is full and a chunk has no column.
        """
        ids = []
        with self._lock:
            for chunk in chunks:
                column = self._columns.get(chunk)
                if column is None:
                    if self._used >= _MAX_COLUMNS or self._key_chars >= _MAX_KEY_CHARS:
                        return None
                    column = self._new_column(chunk)
                ids.append(column)
        return b"".join(ids)

    def _chunk_sum(self, chunk: str) -> np.ndarray:
        ids = self.featurizer._chunks[chunk]
        values = np.zeros(self._sums.shape[0], dtype=np.float32)
        if ids:
            values[:-1] = self.token_scores[list(ids)].sum(axis=0)
            values[-1] = len(ids)
        return values

    def _direct_sum(self, chunks: list[str]) -> np.ndarray:
        zeros = [self._sums[:, 0]]
        return np.sum([self._chunk_sum(c) for c in chunks] or zeros, axis=0)

    def _new_column(self, chunk: str) -> bytes:
        values = self._chunk_sum(chunk)
        n_rows, capacity = self._sums.shape
        if self._used == capacity:
            grown = np.zeros((n_rows, 2 * capacity), np.float32)
            grown[:, :self._used] = self._sums[:, :self._used]
            # Publish the grown table before any dict entry points past the old.
            self._sums = grown
        self._sums[:, self._used] = values
        column = self._used.to_bytes(_ID_DTYPE.itemsize, sys.byteorder)
        self._columns[chunk] = column
        self._used += 1
        self._key_chars += len(chunk)
        return column
