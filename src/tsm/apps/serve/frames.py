"""One received frame: JPEG or PNG bytes in, uint8 RGB (3, H, W) out, within the server's limits.

JPEG frames are decoded by simplejpeg (libjpeg-turbo) straight from the message's bytes: the same
pixels as Pillow's decoder, in 0.4-0.6x its time (docs/benchmarks.md, "A live frame's fixed
costs"); CMYK JPEGs and PNG go through Pillow. Decoding at a reduced size (libjpeg's DCT scaling,
Pillow's ``draft``) was measured and is not used: it changes the pixels the model sees where it
saves time, and the page already sends frames at the pipeline's resize size, where it saves
little (0.36 vs 0.42x Pillow's time at 256x256).
"""

from __future__ import annotations

import io

import numpy as np
import simplejpeg
import torch
from PIL import Image, UnidentifiedImageError

FORMATS = ("JPEG", "PNG")
JPEG_START = b"\xff\xd8"
_YCBCR_OR_GRAY = ("YCbCr", "Gray")  # what simplejpeg converts to RGB as Pillow does


class FrameError(ValueError):
    """A frame the server cannot use; its message goes back to the client as ``{"error": ...}``."""


def _not_an_image(data: bytes) -> FrameError:
    return FrameError(
        f"a binary message of {len(data)} bytes is not a JPEG or PNG image: send one encoded frame "
        "per binary message"
    )


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise FrameError(
            f"frame of {width}x{height} pixels is over the limit of {max_pixels} pixels: send smaller frames"
        )


def _decode_with_pillow(data: bytes, max_pixels: int) -> np.ndarray:
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError):
        raise _not_an_image(data) from None
    _check_pixels(*image.size, max_pixels)
    try:
        return np.array(image.convert("RGB"))  # a writable copy for torch
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise FrameError(f"the {image.format} frame cannot be decoded: {error}") from None


def decode_frame(data: bytes, max_bytes: int, max_pixels: int) -> torch.Tensor:
    """Decode one JPEG or PNG frame to uint8 (3, H, W), as decoded video frames are laid out.

    The size is read from the header and checked before any pixel is decoded, so a small file
    that expands to a huge image costs nothing.
    """
    if len(data) > max_bytes:
        raise FrameError(
            f"frame of {len(data)} bytes is over the limit of {max_bytes} bytes: send smaller frames"
        )
    colorspace = None
    if data.startswith(JPEG_START):
        try:
            height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        except ValueError:
            raise _not_an_image(data) from None
        _check_pixels(width, height, max_pixels)
    if colorspace in _YCBCR_OR_GRAY:
        try:
            rgb = simplejpeg.decode_jpeg(data, colorspace="RGB")
        except ValueError as error:
            raise FrameError(f"the JPEG frame cannot be decoded: {error}") from None
    else:
        rgb = _decode_with_pillow(data, max_pixels)
    return torch.from_numpy(rgb).permute(2, 0, 1)
