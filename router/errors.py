"""Exceptions raised by the router runtime and the training pipeline.

::

    RouterError                  base class of every error raised on purpose
    ├── BundleError              a bundle cannot be loaded or trusted
    │   └── BundleVersionError   the bundle needs a newer runtime
    ├── LogError                 training logs are unusable (also a ValueError)
    │   └── PriceError           a price file is invalid or lacks a model
    └── PickError                a pick failed inside the inference engine

Wrong argument types raise the built-in ``TypeError`` and wrong argument values
``ValueError`` (``LogError`` and ``UnknownModelError`` subclass it), as Python
callers expect.
"""


class RouterError(Exception):
    """Base class of the errors this library raises on purpose."""


class BundleError(RouterError):
    """A bundle directory is missing, incomplete, corrupted or changed."""


class BundleVersionError(BundleError):
    """A bundle was written by a newer format version than this runtime reads."""


class PickError(RouterError):
    """The inference engine failed on a prompt that passed validation."""


class UnknownModelError(RouterError, ValueError):
    """A model name that the bundle does not route to."""


class LogError(RouterError, ValueError):
    """Training logs are empty, malformed or inconsistent."""


class PriceError(LogError):
    """A price file is malformed, or lacks a price for a logged model."""
