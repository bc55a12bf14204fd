"""The ``Router``: a loaded bundle that picks a model for each prompt."""

import logging
import os
from collections.abc import Iterable, Mapping, Set
from pathlib import Path

import numpy as np

from router import _bundle, _record
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
        The model names it routes to, in the bundle's order: cheapest first at
        training, unchanged by ``router reprice``.
    costs : dict
        Model name to its cost per request in USD, as recorded at training or
        by the latest ``router reprice``.
    bundle_id : str
        A fingerprint of the bundle: the SHA-256 of its manifest's file
        checksums, and also of its costs and operating points once ``router
        calibrate`` or ``router reprice`` has changed them.
    on_pick : callable or None
        Called with a :class:`router.PickRecord` after each pick, or None (the
        default) to record nothing. An exception that it raises is logged once
        and does not stop the pick.
    """

    def __init__(self, directory, *, threads: int = 1, on_pick=None):
        if on_pick is not None and not callable(on_pick):
            msg = f"on_pick must be a callable or None; got {type(on_pick).__name__}"
            raise TypeError(msg)
        self.on_pick = on_pick
        self.on_pick_errors = 0
        self.directory = Path(directory)
        self.manifest = _bundle.read_manifest(self.directory)
        try:
            self._load(self.manifest, threads)
        except BundleError as e:
            if str(self.directory) in str(e):
                raise
            msg = f"{self.directory / _bundle.MANIFEST}: {e}"
            raise BundleError(msg) from e

    def _load(self, manifest: dict, threads: int) -> None:
        """Build the featurizer, head and operating points from a checked manifest."""
        self.costs = _read_models(_bundle.require(manifest, "models"))
        self.models = tuple(self.costs)
        cost_array = np.array([self.costs[m] for m in self.models], dtype=np.float32)
        self._relative_costs = cost_array / max(float(cost_array.max()), 1e-30)
        # Cost weight to its penalty vector; see _penalty.
        self._penalties: dict[float, np.ndarray] = {}
        self._index = {name: i for i, name in enumerate(self.models)}
        # The cheapest head sums its outputs in cost order; None while the
        # bundle's order is the cost order, which spares a permutation per pick.
        order = np.argsort(cost_array, kind="stable")
        self._cost_order = None if (order == np.arange(len(order))).all() else order

        head = _bundle.require(manifest, "head")
        self.head_kind = _bundle.require(manifest, "head", "kind")
        if self.head_kind not in ("correctness", "cheapest"):
            msg = (
                f"bundle {self.directory} has a head of kind {self.head_kind!r}, "
                "which this runtime does not know (it knows 'correctness' and "
                "'cheapest'); upgrade learned-router"
            )
            raise BundleError(msg)
        self._classes = _read_classes(head, len(self.models))
        self._input = _bundle.require(manifest, "head", "input")
        # The correctness head has one output per model, the cheapest head one
        # per class that it saw in training.
        n_outputs = len(self._classes)
        if self.head_kind == "correctness":
            n_outputs = len(self.models)
        self.featurizer = _load_featurizer(
            _bundle.require(manifest, "featurizer"), self.directory, manifest
        )
        self._fused = None
        self._session = None
        if self._input == "token_ids" and head.get("token_scores"):
            self._fused = _load_fused(self.featurizer, head, self.directory,
                                      manifest, n_outputs)
        else:
            name = _bundle.listed(manifest, _bundle.require(manifest, "head", "file"))
            self._session = _open_session(self.directory / name, threads, self._input)
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
            used. Defaults to the bundle's pinned point (``router calibrate``),
            else to its training-time target.
        allowed : iterable of str, optional
            Restrict the choice to these models (for example those that are up);
            the best remaining model by the router's own scores is returned.
        """
        if self.on_pick is not None:
            return _record.pick_and_record(self, [prompt_text(prompt)], quality,
                                           allowed)[0]
        scores = self._checked_scores([prompt_text(prompt)])
        return self._choose_rows(scores, quality, allowed)[0]

    def pick_batch(self, prompts, *, quality: float | None = None,
                   allowed=None) -> list[str]:
        """Return one model name per prompt, as :meth:`pick` would, in one pass."""
        # A dict is one message and a set has no order, so neither is a batch.
        if (isinstance(prompts, (str, bytes, bytearray, Mapping, Set))
                or not isinstance(prompts, Iterable)):
            msg = (
                "pick_batch expects a list of prompts; got "
                f"{type(prompts).__name__}. Use pick() for a single prompt."
            )
            raise TypeError(msg)
        texts = [prompt_text(p) for p in prompts]
        if not texts:
            return []
        if self.on_pick is not None:
            return _record.pick_and_record(self, texts, quality, allowed)
        return self._choose_rows(self._checked_scores(texts), quality, allowed)

    def scores(self, prompt) -> np.ndarray:
        """Return the quality estimate of every model for one prompt, in 0..1.

        The array follows :attr:`models`; see :mod:`router._choose` for what the
        estimate means for each head.
        """
        return self._checked_scores([prompt_text(prompt)])[0]

    def _checked_scores(self, texts: list[str]) -> np.ndarray:
        try:
            return self._score_texts(texts)
        except PickError:
            raise
        # Validated texts and a validated bundle leave no expected failure here,
        # so any exception is a defect that callers should see as a PickError.
        except Exception as e:
            msg = (
                f"scoring {len(texts)} prompt(s) failed inside the runtime "
                f"({type(e).__name__}: {e}). Send the prompt to a default model "
                "and report this with the bundle's manifest."
            )
            raise PickError(msg) from e

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
        penalty = self._penalty(point["cost_weight"])
        if allowed is not None:
            penalty = penalty + self._mask(allowed)
        picks = (scores - penalty).argmax(axis=1).tolist()
        return [self.models[i] for i in picks]

    def _penalty(self, cost_weight: float) -> np.ndarray:
        """Return ``cost_weight * relative cost`` per model, memoized per weight."""
        # Keys are the weights of the stored operating points, so the memo stays
        # as small as the bundle. Two threads may both compute an entry; they
        # store equal read-only arrays.
        penalty = self._penalties.get(cost_weight)
        if penalty is None:
            penalty = cost_weight * self._relative_costs
            penalty.flags.writeable = False
            self._penalties[cost_weight] = penalty
        return penalty

    def _mask(self, allowed) -> np.ndarray:
        if isinstance(allowed, str):
            allowed = [allowed]
        if isinstance(allowed, (bytes, bytearray)) or not isinstance(allowed, Iterable):
            msg = (
                "allowed must be a model name or an iterable of model names; got "
                f"{type(allowed).__name__}"
            )
            raise TypeError(msg)
        names = set()
        for name in allowed:
            if not isinstance(name, str):
                msg = (
                    f"allowed must contain model names (str); got {name!r} of type "
                    f"{type(name).__name__}"
                )
                raise TypeError(msg)
            names.add(name)
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
        if self._fused is not None:
            if len(texts) == 1:
                raw = self._fused.scores_one(texts[0])[None, :]
            else:
                raw = self._fused.scores_batch(texts)
            return quality_scores(self.head_kind, raw, self._classes, len(self.models),
                                  self._cost_order)
        if self._input == "token_ids":
            outputs = [self._run_token_ids(texts[i:i + _BATCH_ROWS])
                       for i in range(0, len(texts), _BATCH_ROWS)]
        else:
            outputs = [self._run({"features": self.featurizer.transform(
                texts[i:i + _BATCH_ROWS])}) for i in range(0, len(texts), _BATCH_ROWS)]
        raw = np.concatenate(outputs) if len(outputs) > 1 else outputs[0]
        return quality_scores(self.head_kind, raw, self._classes, len(self.models),
                              self._cost_order)

    def _run_token_ids(self, texts: list[str]) -> np.ndarray:
        ids, counts = self.featurizer.token_feeds(texts)
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


def _read_models(models) -> dict:
    """Return model name to cost from the manifest's ``models``, in bundle order."""
    if not isinstance(models, list) or not models:
        msg = f"bundle manifest has invalid 'models' {models!r:.80}; retrain the bundle"
        raise BundleError(msg)
    costs = {}
    for entry in models:
        name = entry.get("name") if isinstance(entry, dict) else None
        cost = entry.get("cost_usd") if isinstance(entry, dict) else None
        valid_cost = (isinstance(cost, (int, float)) and not isinstance(cost, bool)
                      and np.isfinite(cost) and cost >= 0)
        if not isinstance(name, str) or name in costs or not valid_cost:
            msg = (
                f"bundle manifest has an invalid model entry {entry!r:.120}: each "
                "needs a unique 'name' and a finite 'cost_usd' >= 0. Retrain the "
                "bundle."
            )
            raise BundleError(msg)
        costs[name] = float(cost)
    return costs


def _read_classes(head: dict, n_models: int) -> np.ndarray:
    classes = head.get("classes", list(range(n_models)))
    valid = (
        isinstance(classes, list) and classes
        and all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
        and all(0 <= c < n_models for c in classes)
        and len(set(classes)) == len(classes)
    )
    if not valid:
        msg = (
            f"bundle manifest has invalid head classes {classes!r:.80}; expected "
            f"distinct model indices in 0..{n_models - 1}. Retrain the bundle."
        )
        raise BundleError(msg)
    return np.asarray(classes, dtype=np.intp)


def _load_fused(featurizer, head: dict, directory: Path, manifest: dict,
                n_outputs: int):
    from router._fused import FusedLinearHead

    name = _bundle.listed(manifest, head["token_scores"])
    table = _bundle.load_array(directory, name)
    # One row per vocabulary token plus the padding row, one column per output.
    expected = (getattr(featurizer, "pad_id", -1) + 1, n_outputs)
    if table.shape != expected or not np.issubdtype(table.dtype, np.floating):
        msg = (
            f"bundle file {directory / name} holds {table.dtype} of shape "
            f"{table.shape}; the vocabulary and models need floats of shape "
            f"{expected}. Retrain the bundle."
        )
        raise BundleError(msg)
    if not np.isfinite(table).all():
        msg = (
            f"bundle file {directory / name} contains NaN or infinite scores; "
            "retrain the bundle"
        )
        raise BundleError(msg)
    try:
        bias = np.asarray(head["bias"], dtype=np.float32)
        if not np.isfinite(bias).all():
            msg = f"bias {head['bias']!r} is not finite"
            raise ValueError(msg)
        return FusedLinearHead(featurizer, table, bias, head["activation"])
    except (KeyError, TypeError, ValueError) as e:
        msg = f"bundle {directory} has an invalid token-score head: {e}; retrain it"
        raise BundleError(msg) from e


# Graph inputs that each value of the manifest's head.input feeds.
_SESSION_INPUTS = {"token_ids": {"token_ids", "token_counts"}, "features": {"features"}}


def _open_session(path: Path, threads: int, head_input: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises its own untyped errors
        msg = (
            f"bundle file {path} is not a loadable ONNX model ({e}); retrain the "
            "bundle"
        )
        raise BundleError(msg) from e
    found = {i.name for i in session.get_inputs()}
    expected = _SESSION_INPUTS.get(head_input)
    if found != expected:
        msg = (
            f"bundle file {path} takes the inputs {sorted(found)}, but the manifest's "
            f"head.input {head_input!r} needs {sorted(expected or [])}; retrain the "
            "bundle"
        )
        raise BundleError(msg)
    return session


def _window(spec: dict, key: str, default: int) -> int:
    value = spec.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        msg = (
            f"bundle manifest has featurizer.{key} {value!r}; expected a whole "
            "number >= 0. Retrain the bundle."
        )
        raise BundleError(msg)
    return value


def _load_featurizer(spec: dict, directory: Path, manifest: dict):
    if not isinstance(spec, dict):
        msg = f"bundle manifest has an invalid featurizer {spec!r:.80}; retrain it"
        raise BundleError(msg)
    kind = spec.get("kind")
    head_chars = _window(spec, "head_chars", 0)
    tail_chars = _window(spec, "tail_chars", 0)
    if kind == "static":
        from router._static import StaticFeaturizer

        vocab = _bundle.require(manifest, "featurizer", "vocab")
        tokens = _bundle.load_json(directory, _bundle.listed(manifest, vocab))
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            msg = (
                f"bundle file {directory / vocab} must hold a JSON list of token "
                "strings; retrain the bundle"
            )
            raise BundleError(msg)
        vectors = None
        if spec.get("vectors"):
            vectors = _bundle.load_array(
                directory, _bundle.listed(manifest, spec["vectors"]))
        try:
            return StaticFeaturizer(
                tokens, vectors, head_chars=head_chars, tail_chars=tail_chars
            )
        except (ValueError, IndexError) as e:
            msg = f"bundle {directory} has an invalid static featurizer: {e}"
            raise BundleError(msg) from e
    if kind == "minilm":
        from router._minilm import MiniLMFeaturizer

        encoder = _bundle.require(manifest, "featurizer", "encoder")
        tokenizer = _bundle.require(manifest, "featurizer", "tokenizer")
        return MiniLMFeaturizer(
            directory / _bundle.listed(manifest, encoder),
            directory / _bundle.listed(manifest, tokenizer),
            head_chars=head_chars,
            tail_chars=tail_chars,
            max_tokens=_window(spec, "max_tokens", 256),
            head_tokens=_window(spec, "head_tokens", 32),
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
