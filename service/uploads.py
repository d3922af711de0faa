"""Uploaded bytes to decoded pixels, every failure a client's mistake with a stable code.

Pillow and NumPy raise many exception types on hostile input; each one that
comes from an upload becomes a 4xx :class:`~service.errors.APIError` here, so
the engine and the routes never have to tell a bad file from a bug.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from lpr.preprocessing import ImageError, InputSpec, load_image, open_image, preprocess, whiteness
from service.errors import APIError

logger = logging.getLogger("service.uploads")


def open_upload(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """The upload's header, checked against the byte and pixel limits; nothing decoded yet."""
    if len(data) > max_bytes:
        raise APIError("file_too_large", f"the file is over the upload limit of {max_bytes} bytes")
    try:
        return open_image(data, max_pixels=max_pixels)
    except ImageError as exc:
        raise APIError.from_image_error(exc) from exc
    except Exception as exc:  # a Pillow plugin tripping over hostile bytes is still the input's fault
        logger.warning("opening an upload failed (%r)", exc, exc_info=True)
        raise APIError("not_an_image", f"the upload could not be read as an image: {exc}") from exc


def upload_error(exc: Exception) -> APIError:
    """Every failure past the header is the upload's fault, so each becomes a 4xx :class:`APIError`."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, ImageError):
        return APIError.from_image_error(exc)
    logger.warning("processing an upload failed (%r)", exc, exc_info=True)
    return APIError("corrupt", f"the image could not be processed: {exc}")


def decode(image: Image.Image) -> Image.Image:
    """An opened upload decoded upright, as ``L`` or ``RGB``."""
    try:
        return load_image(image)
    except Exception as exc:
        raise upload_error(exc) from exc


def prepare(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """An opened upload to one model input (a lone ``/predict`` crop)."""
    try:
        return preprocess(load_image(image), spec)
    except Exception as exc:
        raise upload_error(exc) from exc


def decode_whiteness(image: Image.Image) -> np.ndarray:
    """An opened upload decoded to its whiteness array, the part of preprocessing done per file."""
    try:
        return whiteness(load_image(image))
    except Exception as exc:
        raise upload_error(exc) from exc
