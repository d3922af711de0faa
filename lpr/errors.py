"""The input's fault, told apart from the model's: the core's one error for an image it cannot read.

Pillow, NumPy and SciPy raise many exception types on hostile pixels (a
truncated stream, an EXIF block that lies, a shape nothing was written for).
Each step that works on an image's pixels runs under :func:`unreadable`, which
turns any such failure into :class:`UnreadableImage`; the calls into a model
(classifier, detector) run outside it, so their failure stays what it is. A
caller (the service) then maps :class:`~lpr.preprocessing.ImageError`, which
this error is, to its own answer, and needs no blanket ``except`` of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from lpr.preprocessing import ImageError

logger = logging.getLogger("lpr.errors")


class UnreadableImage(ImageError):
    """An image that opened but whose pixels could not be processed (code ``corrupt``)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__("corrupt", f"the image could not be processed: {cause}")


@contextmanager
def unreadable() -> Iterator[None]:
    """Any failure of the work inside on an image's pixels is the image's: :class:`UnreadableImage`.

    An :class:`~lpr.preprocessing.ImageError` (decoding already says what is
    wrong) passes through unchanged. Anything else is logged with its traceback,
    so a bug that hides behind a bad image can still be found.
    """
    try:
        yield
    except ImageError:
        raise
    except Exception as exc:
        logger.warning("processing an image failed (%r)", exc, exc_info=True)
        raise UnreadableImage(exc) from exc
