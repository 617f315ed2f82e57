"""Images in: a file read as BGR uint8, and any frame a caller hands over checked and converted to BGR."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputFileError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def as_bgr(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Grayscale ``(H, W)`` / ``(H, W, 1)`` and BGRA ``(H, W, 4)`` uint8 -> BGR ``(H, W, 3)``; BGR passes through.

    Anything else (another dtype or channel count, an empty frame) raises ``InputFileError`` naming it.
    """
    if not isinstance(image, np.ndarray):
        raise InputFileError(f"{what}: got {type(image).__name__}, expected a numpy (H, W, 3) uint8 BGR array")
    if image.dtype != np.uint8:
        raise InputFileError(f"{what}: dtype {image.dtype}, expected uint8 (0-255) BGR")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise InputFileError(f"{what}: shape {image.shape}, expected (H, W), (H, W, 3) or (H, W, 4)")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputFileError(f"{what}: empty frame of shape {image.shape}, expected H, W > 0")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image



def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as BGR uint8 (grayscale, 16-bit and RGBA files are converted)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such image file")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # cv2.imread cannot open non-ASCII paths on Windows
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except (OSError, cv2.error) as exc:
        raise InputFileError(f"{path}: cannot read ({exc})") from exc
    if image is None:
        raise InputFileError(f"{path}: not a readable image (expected {', '.join(IMAGE_SUFFIXES)})")
    return as_bgr(image, str(path))
