"""Chunked, resumable featurization into a work directory.

Features of distinct prompts are stored in chunk files under
``<work_dir>/features/<featurizer key>/``:

``chunk-<id>.npy``
    float32 features of shape ``(rows, dim)``.
``chunk-<id>.keys.npy``
    The SHA-256 digest of each row's UTF-8 text, dtype ``S32``.
``index.json``
    The featurizer key, the feature dimension and the list of chunks.

Each file is written to a temporary name and moved into place with
:func:`os.replace`, and a chunk enters ``index.json`` only after both of its
files are in place. A killed run therefore leaves only whole chunks in the
index, and the next run featurizes only the texts that no indexed chunk
contains. Chunks are found by text hash, not by position, so logs added to old
ones reuse every chunk already written for the same featurizer.

The feature matrix of one run is assembled from the chunks into a memory-mapped
``.npy`` file in the same folder, so its rows never all sit in memory at once.
"""

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

INDEX_VERSION = 1


def text_key(text: str) -> bytes:
    """Return the SHA-256 digest of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def text_keys(texts: Iterable[str]) -> np.ndarray:
    """Return the :func:`text_key` of each text as an ``S32`` array."""
    return np.array([text_key(text) for text in texts], dtype="S32")


def featurizer_key(featurizer) -> str:
    """Return a key naming the features ``featurizer`` computes.

    It covers the featurizer's fingerprint (its token vectors or embedder) and
    its clip windows, so a change of either starts a new chunk folder.
    """
    spec = featurizer.spec
    parts = [featurizer.kind, featurizer.fingerprint, str(spec.get("head_chars")),
             str(spec.get("tail_chars")), str(spec.get("dim"))]
    return hashlib.sha256(":".join(parts).encode("utf-8")).hexdigest()


def _save_atomic(path: Path, array: np.ndarray) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


class ChunkStore:
    """Feature chunks of one featurizer in a work directory.

    Parameters
    ----------
    work_dir : path
        The work directory; created if missing.
    key : str
        The :func:`featurizer_key` of the featurizer.
    dim : int
        The feature dimension.

    Attributes
    ----------
    folder : Path
        ``<work_dir>/features/<first 16 hex digits of key>``.
    n_featurized : int
        Rows written by this object, which tests and logs use to tell reused
        chunks from new ones.
    """

    def __init__(self, work_dir: str | os.PathLike, key: str, dim: int):
        self.key = key
        self.dim = int(dim)
        self.folder = Path(work_dir) / "features" / key[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.n_featurized = 0
        self._chunks = self._read_index()
        self._load_keys()

    def _read_index(self) -> list[dict]:
        path = self.folder / "index.json"
        if not path.is_file():
            return []
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
            chunks = list(index["chunks"])
        except (ValueError, KeyError, TypeError) as error:
            msg = (
                f"{path} is damaged ({type(error).__name__}: {error}); remove "
                f"{self.folder} to featurize its prompts again, or choose another "
                "work directory"
            )
            raise ValueError(msg) from None
        if index.get("featurizer") != self.key or index.get("dim") != self.dim:
            msg = (
                f"{path} belongs to featurizer {index.get('featurizer')!r} with "
                f"dimension {index.get('dim')}, not {self.key!r} with {self.dim}; "
                "remove the folder or choose another work directory"
            )
            raise ValueError(msg)
        return chunks

    def _write_index(self) -> None:
        index = {"version": INDEX_VERSION, "featurizer": self.key, "dim": self.dim,
                 "chunks": self._chunks}
        path = self.folder / "index.json"
        temporary = path.with_name(f".index.json.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(index, indent=1), encoding="utf-8")
        os.replace(temporary, path)

    def _load_keys(self) -> None:
        # One sorted array of every stored key, with the chunk and row of each,
        # takes about 40 bytes a prompt, a few times less than a dict of bytes.
        keys, chunk_of, row_of = [], [], []
        intact = [chunk for chunk in self._chunks if self._is_intact(chunk)]
        if len(intact) < len(self._chunks):
            # Their prompts count as missing, so this run featurizes them again.
            self._chunks = intact
            self._write_index()
        for number, chunk in enumerate(self._chunks):
            stored = np.load(self.folder / f"{chunk['name']}.keys.npy")
            keys.append(stored)
            chunk_of.append(np.full(len(stored), number, dtype=np.int32))
            row_of.append(np.arange(len(stored), dtype=np.int32))
        if not keys:
            self._keys = np.empty(0, dtype="S32")
            self._chunk_of = self._row_of = np.empty(0, dtype=np.int32)
            return
        keys = np.concatenate(keys)
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._chunk_of = np.concatenate(chunk_of)[order]
        self._row_of = np.concatenate(row_of)[order]

    def _is_intact(self, chunk: dict) -> bool:
        """Return whether both files of ``chunk`` load with the indexed shape."""
        rows, name = chunk["rows"], chunk["name"]
        problem = (_shape_problem(self.folder / f"{name}.keys.npy", (rows,))
                   or _shape_problem(self.folder / f"{name}.npy", (rows, self.dim)))
        if problem:
            logger.warning("dropping damaged chunk %s from %s: %s", name, self.folder,
                           problem)
        return problem is None

    @property
    def n_chunks(self) -> int:
        """Number of chunks in the index."""
        return len(self._chunks)

    def locate(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the chunk number and row of each key, -1 where none stores it."""
        keys = np.asarray(keys, dtype="S32")
        chunk = np.full(len(keys), -1, dtype=np.int64)
        row = np.full(len(keys), -1, dtype=np.int64)
        if len(self._keys) == 0:
            return chunk, row
        position = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        found = self._keys[position] == keys
        chunk[found] = self._chunk_of[position[found]]
        row[found] = self._row_of[position[found]]
        return chunk, row

    def missing(self, keys: np.ndarray) -> np.ndarray:
        """Return the positions in ``keys`` that no chunk stores."""
        chunk, _ = self.locate(keys)
        return np.flatnonzero(chunk < 0)

    def write_chunk(self, keys: np.ndarray, features: np.ndarray) -> str:
        """Store one chunk of features and add it to the index; return its name."""
        keys = np.asarray(keys, dtype="S32")
        features = np.ascontiguousarray(features, dtype=np.float32)
        if features.shape != (len(keys), self.dim):
            msg = (
                f"a chunk of {len(keys)} keys needs features of shape "
                f"({len(keys)}, {self.dim}); got {features.shape}"
            )
            raise ValueError(msg)
        name = "chunk-" + hashlib.sha256(keys.tobytes()).hexdigest()[:16]
        _save_atomic(self.folder / f"{name}.npy", features)
        _save_atomic(self.folder / f"{name}.keys.npy", keys)
        if all(chunk["name"] != name for chunk in self._chunks):
            self._chunks.append({"name": name, "rows": len(keys)})
            self._write_index()
            self._load_keys()
        self.n_featurized += len(keys)
        logger.info("wrote %s: %d prompts (%d chunks in %s)", name, len(keys),
                    len(self._chunks), self.folder)
        return name

    def assemble(self, keys: np.ndarray) -> np.ndarray:
        """Return the features of ``keys`` in order, as a read-only memory map.

        Raises
        ------
        KeyError
            If a key is in no chunk; featurize the missing texts first.
        """
        keys = np.asarray(keys, dtype="S32")
        chunk, row = self.locate(keys)
        if (chunk < 0).any():
            msg = f"{int((chunk < 0).sum())} of {len(keys)} texts have no features"
            raise KeyError(msg)
        name = "matrix-" + hashlib.sha256(keys.tobytes()).hexdigest()[:16] + ".npy"
        path = self.folder / name
        problem = path.is_file() and _shape_problem(path, (len(keys), self.dim))
        if problem:
            logger.warning("assembling %s again: %s", path, problem)
            path.unlink()
        if not path.is_file():
            temporary = path.with_name(f".{name}.{os.getpid()}.tmp")
            out = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float32,
                                            shape=(len(keys), self.dim))
            # One chunk at a time, so at most one chunk's rows are copied in memory.
            for number in np.unique(chunk):
                positions = np.flatnonzero(chunk == number)
                stored = np.load(self.folder / f"{self._chunks[number]['name']}.npy",
                                 mmap_mode="r")
                out[positions] = stored[row[positions]]
            out.flush()
            del out
            os.replace(temporary, path)
            # Matrices of earlier runs are derived from the chunks; keep only
            # this one so the folder does not grow by a matrix per run.
            for old in self.folder.glob("matrix-*.npy"):
                if old != path:
                    old.unlink(missing_ok=True)
        return np.load(path, mmap_mode="r")


def _shape_problem(path: Path, shape: tuple) -> str | None:
    """Return why the ``.npy`` file at ``path`` is not an array of ``shape``."""
    try:
        found = np.load(path, mmap_mode="r").shape
    except (OSError, ValueError, EOFError) as error:
        return str(error)
    return None if found == shape else f"its shape is {found}, not {shape}"


def featurize_pending(store: ChunkStore, pending: Path, featurizer,
                      chunk_size: int) -> int:
    """Featurize the texts of a Parquet file chunk by chunk, in this process.

    Parameters
    ----------
    store : ChunkStore
    pending : path
        A Parquet file with a ``prompt`` column: the texts to featurize, written
        with row groups of ``chunk_size`` rows so each slice reads one group.
    featurizer : training.embed.Featurizer
    chunk_size : int
        Texts per chunk.

    Returns
    -------
    int
        The number of texts featurized.
    """
    n_pending = 0
    for texts in read_texts(pending, chunk_size):
        store.write_chunk(text_keys(texts), featurizer.transform(texts))
        n_pending += len(texts)
    return n_pending


def read_texts(path: Path, step: int):
    """Yield the ``prompt`` column of a Parquet file as lists of ``step`` texts."""
    import polars as pl

    n_rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    for start in range(0, n_rows, step):
        yield (
            pl.scan_parquet(path)
            .slice(start, step)
            .select("prompt")
            .collect()["prompt"]
            .to_list()
        )


class _StaticBatches:
    """Ray Data callable: the static featurizer, built once per worker."""

    def __init__(self, runtime_ref):
        import ray

        from router._static import StaticFeaturizer

        tokens, vectors, head_chars, tail_chars = ray.get(runtime_ref[0])
        self._featurizer = StaticFeaturizer(tokens, vectors, head_chars=head_chars,
                                            tail_chars=tail_chars)

    def __call__(self, batch: dict) -> dict:
        texts = list(batch["prompt"])
        # Keys travel as rows of 32 bytes: Arrow cuts S32 values at their first
        # zero byte.
        keys = text_keys(texts).view(np.uint8).reshape(len(texts), 32)
        return {"key": keys, "features": self._featurizer.transform(texts)}


def featurize_with_ray(store: ChunkStore, pending: Path, featurizer,
                       chunk_size: int, ray_address: str) -> int:
    """Featurize the texts of ``pending`` on Ray workers; see :func:`featurize_pending`.

    Ray Data reads ``pending`` and runs the static featurizer in
    ``map_batches``; this process receives the features in batches of
    ``chunk_size`` rows and writes each as a chunk, so a killed run keeps every
    chunk received so far.

    Parameters
    ----------
    ray_address : str
        ``"local"`` to start Ray in this process with one CPU per core, or the
        address of a running cluster, such as ``"ray://head:10001"`` or
        ``"auto"``. An already initialized Ray is used as it is.

    Raises
    ------
    ImportError
        If Ray is not installed.
    ValueError
        If the featurizer is not the static one.
    """
    if featurizer.kind != "static":
        msg = (
            f"Ray featurization runs the static featurizer only; got "
            f"{featurizer.kind!r}. Drop --ray-address to featurize in this process."
        )
        raise ValueError(msg)
    try:
        import ray
    except ImportError as error:
        msg = (
            "featurizing on Ray needs Ray Data; install it with "
            "pip install 'learned-router[scale]'"
        )
        raise ImportError(msg) from error

    started = not ray.is_initialized()
    if started and ray_address == "local":
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING)
    elif started:
        ray.init(address=ray_address, log_to_driver=False,
                 logging_level=logging.WARNING)
    try:
        runtime = featurizer.runtime
        tokens = featurizer.files["static_vocab.json"]
        # One object-store copy of the vectors, read by every worker. The
        # reference sits in a list so that Ray passes it unresolved.
        ref = ray.put((tokens, runtime.vectors, runtime.head_chars,
                       runtime.tail_chars))
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        n_workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        # Ray Data reads a file into blocks of up to 128 MB and hands each block
        # to one actor, which returns features only when its block is done.
        # Smaller blocks keep every actor busy, and the driver writes chunks
        # while the other blocks are still featurized.
        saved = context.target_max_block_size, context.print_on_execution_start
        context.target_max_block_size = _block_bytes(pending, chunk_size, n_workers)
        context.print_on_execution_start = False
        try:
            # Half a CPU per actor: an actor per CPU would hold every CPU and
            # leave none for the tasks that read the file, which would then wait
            # forever.
            dataset = ray.data.read_parquet(str(pending), columns=["prompt"])
            features = dataset.map_batches(
                _StaticBatches, fn_constructor_args=([ref],), batch_size=2048,
                batch_format="numpy", num_cpus=0.5,
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=n_workers),
            )
            n_done = 0
            for batch in features.iter_batches(batch_size=chunk_size,
                                               batch_format="numpy"):
                keys = np.ascontiguousarray(np.stack(batch["key"]), dtype=np.uint8)
                keys = keys.view("S32").ravel()
                store.write_chunk(keys, np.stack(batch["features"]))
                n_done += len(keys)
        finally:
            context.target_max_block_size, context.print_on_execution_start = saved
        return n_done
    finally:
        if started:
            ray.shutdown()


def _block_bytes(pending: Path, chunk_size: int, n_workers: int) -> int:
    """Return a Ray Data block size that splits ``pending`` into enough blocks.

    The file gets at least two blocks a chunk and four an actor, and each block
    is between 1 MB and Ray Data's default of 128 MB.
    """
    import polars as pl

    counts = pl.scan_parquet(pending).select(
        pl.len().alias("rows"), pl.col("prompt").str.len_bytes().sum().alias("bytes")
    ).collect()
    rows, text_bytes = counts.row(0)
    n_blocks = max(2 * -(-rows // chunk_size), 4 * n_workers)
    return int(min(max((text_bytes or 0) // n_blocks, 2**20), 128 * 2**20))
