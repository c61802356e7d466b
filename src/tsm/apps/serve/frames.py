"""One received frame: JPEG or PNG bytes in, uint8 RGB (3, H, W) out, within the server's limits."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

FORMATS = ("JPEG", "PNG")


class FrameError(ValueError):
    """A frame the server cannot use; its message goes back to the client as ``{"error": ...}``."""


def decode_frame(data: bytes, max_bytes: int, max_pixels: int) -> torch.Tensor:
    """Decode one JPEG or PNG frame to uint8 (3, H, W), as decoded video frames are laid out.

    The size is read from the header and checked before any pixel is decoded, so a small file
    that expands to a huge image costs nothing.
    """
    if len(data) > max_bytes:
        raise FrameError(
            f"frame of {len(data)} bytes is over the limit of {max_bytes} bytes: send smaller frames"
        )
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError):
        raise FrameError(
            f"a binary message of {len(data)} bytes is not a JPEG or PNG image: send one encoded frame "
            "per binary message"
        ) from None
    width, height = image.size
    if width * height > max_pixels:
        raise FrameError(
            f"frame of {width}x{height} pixels is over the limit of {max_pixels} pixels: send smaller frames"
        )
    try:
        rgb = np.array(image.convert("RGB"))  # a writable copy for torch
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise FrameError(f"the {image.format} frame cannot be decoded: {error}") from None
    return torch.from_numpy(rgb).permute(2, 0, 1)
