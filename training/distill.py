"""Distill static token vectors from the sentence embedder, once per embedder.

model2vec runs every vocabulary token through the embedder, reduces the vectors
with PCA and weights them by token frequency (SIF), so the mean of a prompt's
token vectors approximates the embedder's sentence embedding without running it.
The result is cached on disk, keyed by the embedder's files and the parameters.
"""

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# PCA dimensions of the distilled vectors: 256 float16 values per token keeps the
# table near 15 MB for MiniLM's 30k-token vocabulary.
DEFAULT_DIMS = 256


def embedder_fingerprint(model_path: Path) -> str:
    """Return a SHA-256 over an embedder directory's file names, sizes and mtimes."""
    digest = hashlib.sha256()
    for path in sorted(Path(model_path).rglob("*")):
        if path.is_file():
            stat = path.stat()
            rel = path.relative_to(model_path).as_posix()
            digest.update(f"{rel}:{stat.st_size}:{int(stat.st_mtime)}\n".encode())
    return digest.hexdigest()


def distill_static(model_path: Path, cache_dir: Path, *,
                   dims: int = DEFAULT_DIMS) -> tuple[list[str], np.ndarray]:
    """Return ``(tokens, vectors)`` distilled from the embedder at ``model_path``.

    ``vectors`` is float16 of shape ``(len(tokens), dims)``. A second call with the
    same embedder files and ``dims`` reads the cache instead of distilling again.
    """
    model_path = Path(model_path)
    key = hashlib.sha256(
        f"{embedder_fingerprint(model_path)}:{dims}".encode()
    ).hexdigest()[:24]
    entry = Path(cache_dir) / "static" / key
    vocab_file, vectors_file = entry / "vocab.json", entry / "vectors.npy"
    if vocab_file.is_file() and vectors_file.is_file():
        logger.info("static vectors: cached in %s", entry)
        tokens = json.loads(vocab_file.read_text(encoding="utf-8"))
        return tokens, np.load(vectors_file, allow_pickle=False)

    tokens, vectors = _distill(model_path, dims)
    entry.mkdir(parents=True, exist_ok=True)
    # Write beside and rename, so a crash never leaves a half entry in the cache.
    tmp_vectors = entry / f"vectors.{os.getpid()}.tmp.npy"
    np.save(tmp_vectors, vectors)
    tmp_vocab = entry / f"vocab.{os.getpid()}.tmp"
    tmp_vocab.write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp_vectors, vectors_file)
    os.replace(tmp_vocab, vocab_file)
    return tokens, vectors


def _distill(model_path: Path, dims: int) -> tuple[list[str], np.ndarray]:
    from model2vec.distill import distill

    logger.info("distilling static vectors from %s (%d dims)", model_path, dims)
    model = distill(model_name=str(model_path), pca_dims=dims)
    vocab = model.tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.get)
    if [vocab[t] for t in tokens] != list(range(len(tokens))):
        msg = "the distilled vocabulary ids are not contiguous from 0"
        raise RuntimeError(msg)
    vectors = np.asarray(model.embedding, dtype=np.float16)
    return tokens, vectors
