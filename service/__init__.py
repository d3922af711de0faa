"""HTTP service for the Nepali licence-plate character recogniser (ONNX Runtime, no TensorFlow)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    # One version, pyproject's, for the package, the OpenAPI document and the image.
    __version__ = version("nepali-lpr")
except PackageNotFoundError:  # running from a bare checkout
    __version__ = "0+unknown"
