"""Error text shared by every layer: messages the user reads on one line."""

from __future__ import annotations


def one_line(error: BaseException) -> str:
    """An exception's message on one line (FFmpeg's and ONNX Runtime's may span several), or its
    type's name when it has no message."""
    return " ".join(str(error).split()) or type(error).__name__
