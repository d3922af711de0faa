"""SHA-256 of files, for the metadata that ties a model to its exact bytes.

Kept free of TensorFlow (unlike ``export``) so that training, shipping and the
service all hash the same way with the same code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks so large files cost no memory."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
