"""The ``Router``: a loaded bundle that picks a model for each prompt."""

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from router import _bundle
from router._choose import OperatingPoints, quality_scores
from router._text import prompt_text
from router.errors import BundleError, PickError, UnknownModelError

logger = logging.getLogger(__name__)

# Rows of token ids padded to a common length per batch; more rows per session run
# amortize its overhead, fewer bound the padded tensor's size.
_BATCH_ROWS = 256


class Router:
    """A trained router loaded from a bundle directory; see :func:`router.load`.

    Attributes
    ----------
    models : tuple of str
        The model names it routes to, cheapest first.
    costs : dict
        Model name to its cost per request in USD, as recorded at training.
    bundle_id : str
        A fingerprint of the bundle: the SHA-256 of its manifest's file checksums.
    """

    def __init__(self, directory, *, threads: int = 1):
        self.directory = Path(directory)
        self.manifest = _bundle.read_manifest(self.directory)
        manifest = self.manifest

        models = _bundle.require(manifest, "models")
        self.models = tuple(m["name"] for m in models)
        self.costs = {m["name"]: float(m["cost_usd"]) for m in models}
        cost_array = np.array([self.costs[m] for m in self.models], dtype=np.float32)
        self._relative_costs = cost_array / max(float(cost_array.max()), 1e-30)
        self._index = {name: i for i, name in enumerate(self.models)}

        head = _bundle.require(manifest, "head")
        self.head_kind = _bundle.require(manifest, "head", "kind")
        self._classes = np.asarray(head.get("classes", range(len(self.models))))
        self._input = _bundle.require(manifest, "head", "input")
        self.featurizer = _load_featurizer(
            _bundle.require(manifest, "featurizer"), self.directory
        )
        self._session = _open_session(self.directory / head["file"], threads)
        self._input_names = [i.name for i in self._session.get_inputs()]
        self.operating_points = OperatingPoints(
            _bundle.require(manifest, "operating_points")
        )
        self.bundle_id = manifest.get("bundle_id", "")

    def __repr__(self) -> str:
        return (
            f"Router({str(self.directory)!r}, models={len(self.models)}, "
            f"featurizer={self.featurizer.kind!r}, head={self.head_kind!r})"
        )

    def pick(self, prompt, *, quality: float | None = None, allowed=None) -> str:
        """Return the name of the model to send ``prompt`` to.

        Parameters
        ----------
        prompt : str or list
            A string, a list of turns (str), or OpenAI-style messages.
        quality : float, optional
            The fraction of the most accurate single model's validation quality to
            keep; the cheapest operating point that reached it on validation is
            used. Defaults to the bundle's training-time target.
        allowed : iterable of str, optional
            Restrict the choice to these models (for example those that are up);
            the best remaining model by the router's own scores is returned.
        """
        scores = self.scores(prompt)
        return self._choose_rows(scores[None, :], quality, allowed)[0]

    def pick_batch(self, prompts, *, quality: float | None = None,
                   allowed=None) -> list[str]:
        """Return one model name per prompt, as :meth:`pick` would, in one pass."""
        if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Iterable):
            msg = (
                "pick_batch expects a list of prompts; got "
                f"{type(prompts).__name__}. Use pick() for a single prompt."
            )
            raise TypeError(msg)
        texts = [prompt_text(p) for p in prompts]
        if not texts:
            return []
        return self._choose_rows(self._score_texts(texts), quality, allowed)

    def scores(self, prompt) -> np.ndarray:
        """Return the quality estimate of every model for one prompt, in 0..1.

        The array follows :attr:`models`; see :mod:`router._choose` for what the
        estimate means for each head.
        """
        return self._score_texts([prompt_text(prompt)])[0]

    def explain(self, prompt, *, quality: float | None = None, allowed=None) -> dict:
        """Return the choice for ``prompt`` with each model's score and cost."""
        scores = self.scores(prompt)
        point = self.operating_points.for_quality(quality)
        choice = self._choose_rows(scores[None, :], quality, allowed)[0]
        return {
            "model": choice,
            "operating_point": dict(point),
            "bundle_id": self.bundle_id,
            "models": [
                {"name": name, "score": float(scores[i]), "cost_usd": self.costs[name]}
                for i, name in enumerate(self.models)
            ],
        }

    def _choose_rows(self, scores, quality, allowed) -> list[str]:
        point = self.operating_points.for_quality(quality)
        penalty = point["cost_weight"] * self._relative_costs
        if allowed is not None:
            penalty = penalty + self._mask(allowed)
        picks = np.argmax(scores - penalty, axis=1)
        return [self.models[i] for i in picks]

    def _mask(self, allowed) -> np.ndarray:
        if isinstance(allowed, str):
            allowed = [allowed]
        names = set(allowed)
        if not names:
            msg = f"allowed is empty; name at least one of {list(self.models)}"
            raise ValueError(msg)
        unknown = sorted(names - self._index.keys())
        if unknown:
            msg = (
                f"allowed names models this router does not know: {unknown}; "
                f"it routes to {list(self.models)}"
            )
            raise UnknownModelError(msg)
        mask = np.full(len(self.models), np.inf, dtype=np.float32)
        mask[[self._index[n] for n in names]] = 0.0
        return mask

    def _score_texts(self, texts: list[str]) -> np.ndarray:
        if self._input == "token_ids":
            outputs = [self._run_token_ids(texts[i:i + _BATCH_ROWS])
                       for i in range(0, len(texts), _BATCH_ROWS)]
        else:
            outputs = [self._run({"features": self.featurizer.transform(
                texts[i:i + _BATCH_ROWS])}) for i in range(0, len(texts), _BATCH_ROWS)]
        raw = np.concatenate(outputs) if len(outputs) > 1 else outputs[0]
        return quality_scores(self.head_kind, raw, self._classes, len(self.models))

    def _run_token_ids(self, texts: list[str]) -> np.ndarray:
        rows = [self.featurizer.token_ids(t) for t in texts]
        counts = np.array([[max(len(r), 1)] for r in rows], dtype=np.float32)
        pad = self.featurizer.pad_id
        width = max(1, max(len(r) for r in rows))
        ids = np.full((len(rows), width), pad, dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = r
        return self._run({"token_ids": ids, "token_counts": counts})

    def _run(self, feeds: dict) -> np.ndarray:
        try:
            return self._session.run(None, feeds)[0]
        except Exception as e:  # onnxruntime raises its own untyped errors
            msg = (
                f"the ONNX head {self.manifest['head']['file']!r} failed on inputs "
                f"{ {k: v.shape for k, v in feeds.items()} }: {e}. The bundle may "
                "be damaged: retrain it or reload a fresh copy."
            )
            raise PickError(msg) from e


def _open_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises its own untyped errors
        msg = f"bundle file {path} is not a loadable ONNX model ({e}); retrain the bundle"
        raise BundleError(msg) from e


def _load_featurizer(spec: dict, directory: Path):
    kind = spec.get("kind")
    head_chars = int(spec.get("head_chars", 0))
    tail_chars = int(spec.get("tail_chars", 0))
    if kind == "static":
        from router._static import StaticFeaturizer

        tokens = _bundle.load_json(directory, spec["vocab"])
        vectors = None
        if spec.get("vectors"):
            vectors = _bundle.load_array(directory, spec["vectors"])
        try:
            return StaticFeaturizer(
                tokens, vectors, head_chars=head_chars, tail_chars=tail_chars
            )
        except ValueError as e:
            msg = f"bundle {directory} has an invalid static featurizer: {e}"
            raise BundleError(msg) from e
    if kind == "minilm":
        from router._minilm import MiniLMFeaturizer

        return MiniLMFeaturizer(
            directory / spec["encoder"],
            directory / spec["tokenizer"],
            head_chars=head_chars,
            tail_chars=tail_chars,
            max_tokens=int(spec.get("max_tokens", 256)),
            head_tokens=int(spec.get("head_tokens", 32)),
            normalize=bool(spec.get("normalize", True)),
        )
    msg = (
        f"bundle {directory} uses featurizer {kind!r}, which this runtime does not "
        "know (it knows 'static' and 'minilm'); upgrade learned-router"
    )
    raise BundleError(msg)


def default_bundle_path() -> Path:
    """Return the bundle that :func:`router.pick` uses when none is loaded.

    ``$ROUTER_BUNDLE`` if set, else the bundle shipped inside the package, else
    (in a source checkout) the one under ``models/``.
    """
    env = os.environ.get("ROUTER_BUNDLE")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here / "models" / "default", here.parent / "models" / "default"):
        if (candidate / _bundle.MANIFEST).is_file():
            return candidate
    msg = (
        "no default bundle found: set ROUTER_BUNDLE to a bundle directory, or call "
        "router.load(DIR) on one that `router train --out DIR` wrote"
    )
    raise BundleError(msg)
