"""Pick the cheapest LLM that will answer a prompt well, in-process.

Load a bundle that ``router train`` wrote and ask it for a model name::

    import router

    r = router.load("runs/routerbench")
    r.pick("Write a python function that reverses a list.")
    r.pick("Prove that there are infinitely many primes.", quality=1.0)

``router.pick(prompt)`` uses the default bundle: ``$ROUTER_BUNDLE`` if set, else
the one shipped with the package. Importing this package loads neither torch,
scikit-learn, LightGBM, polars nor MLflow; onnxruntime loads with the first bundle.
"""

import threading

from router._choose import QualityNotReachedWarning
from router._record import PickRecord
from router._router import Router, default_bundle_path
from router._text import prompt_text
from router.errors import (
    BundleError,
    BundleVersionError,
    LogError,
    PickError,
    PriceError,
    RouterError,
    UnknownModelError,
)

__version__ = "0.1.0"

__all__ = [
    "BundleError",
    "BundleVersionError",
    "LogError",
    "PickError",
    "PickRecord",
    "PriceError",
    "QualityNotReachedWarning",
    "Router",
    "RouterError",
    "UnknownModelError",
    "default_bundle_path",
    "load",
    "pick",
    "pick_batch",
    "prompt_text",
]

_default: Router | None = None
_default_lock = threading.Lock()


def load(path, *, threads: int = 1, on_pick=None) -> Router:
    """Load the bundle directory at ``path`` and return its :class:`Router`.

    Parameters
    ----------
    path : str or os.PathLike
        A directory that ``router train --out DIR`` wrote.
    threads : int
        onnxruntime threads per pick. One is fastest for single prompts.
    on_pick : callable, optional
        Called with a :class:`PickRecord` after every pick, for audits, shadow
        runs and cost accounting; see :attr:`Router.on_pick`.

    Raises
    ------
    BundleError
        If the directory or one of its files is missing, damaged or changed.
    """
    return Router(path, threads=threads, on_pick=on_pick)


def _default_router() -> Router:
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Router(default_bundle_path())
    return _default


def pick(prompt, *, quality: float | None = None, allowed=None) -> str:
    """Return a model name for ``prompt`` from the default bundle.

    See :meth:`Router.pick` for the arguments.
    """
    return _default_router().pick(prompt, quality=quality, allowed=allowed)


def pick_batch(prompts, *, quality: float | None = None, allowed=None) -> list[str]:
    """Return a model name per prompt from the default bundle."""
    return _default_router().pick_batch(prompts, quality=quality, allowed=allowed)
