"""Uploaded bytes to decoded pixels, every failure a client's mistake with a stable code.

The service checks an upload here before any model sees it: the byte limit,
then the header (format, pixel limit) without decoding a pixel. Decoding and
preparing a crop run under :func:`lpr.errors.unreadable`, so Pillow and NumPy
failing on hostile pixels is the image's fault, and under
:func:`service.errors.image_errors`, the one place the core's error becomes a
4xx :class:`~service.errors.APIError`.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from lpr.errors import unreadable
from lpr.preprocessing import ImageError, InputSpec, load_image, open_image, preprocess, whiteness
from service.errors import APIError, image_errors

logger = logging.getLogger("service.uploads")


def open_upload(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """The upload's header, checked against the byte and pixel limits; nothing decoded yet."""
    if len(data) > max_bytes:
        raise APIError("file_too_large", f"the file is over the upload limit of {max_bytes} bytes")
    with image_errors():
        try:
            return open_image(data, max_pixels=max_pixels)
        except ImageError:
            raise
        except Exception as exc:  # a Pillow plugin tripping over hostile bytes is still the input's fault
            logger.warning("opening an upload failed (%r)", exc, exc_info=True)
            raise APIError("not_an_image", f"the upload could not be read as an image: {exc}") from exc


def prepare(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """An opened upload to one model input (a lone ``/predict`` crop)."""
    with image_errors(), unreadable():
        return preprocess(load_image(image), spec)


def decode_whiteness(image: Image.Image) -> np.ndarray:
    """An opened upload decoded to its whiteness array, the part of preprocessing done per file."""
    with image_errors(), unreadable():
        return whiteness(load_image(image))
