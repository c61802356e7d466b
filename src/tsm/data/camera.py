"""Cameras by number: which input PyAV opens for camera N on this system (``/dev/videoN`` through
v4l2 on Linux, the avfoundation index on macOS), and what to tell the user when that fails: the
missing device and the cameras there are, or how to find them."""

from __future__ import annotations

import re
import sys
from pathlib import Path

# Where Linux puts video devices and their names (tests point these at folders of their own).
DEVICE_DIR = Path("/dev")
V4L2_SYSFS = Path("/sys/class/video4linux")


def list_cameras() -> list[str]:
    """Linux video devices in number order, ``/dev/videoN`` followed by the driver's name for it
    (``/dev/video0 (Integrated Camera)``) where it can be read; empty on other systems or none."""
    devices = [path for path in DEVICE_DIR.glob("video*") if re.fullmatch(r"video\d+", path.name)]
    found = []
    for path in sorted(devices, key=lambda path: int(path.name[len("video") :])):
        try:
            name = (V4L2_SYSFS / path.name / "name").read_text(encoding="utf-8").strip()
        except OSError:
            name = ""
        found.append(f"{path} ({name})" if name else str(path))
    return found


def camera_help() -> str:
    """How to find the cameras of this system: the Linux devices found, or the command to list them."""
    if sys.platform.startswith("linux"):
        cameras = list_cameras()
        if not cameras:
            return f"no camera found (no {DEVICE_DIR}/video* device: is one connected and readable?)"
        return f"cameras found: {', '.join(cameras)}; pass the number of one"
    if sys.platform == "darwin":
        return (
            'macOS numbers cameras from 0 in the order `ffmpeg -f avfoundation -list_devices true -i ""` '
            "lists them; the terminal needs camera access (System Settings > Privacy & Security > Camera)"
        )
    return (
        "cameras are opened by number on Linux (/dev/videoN) and macOS (avfoundation); Windows' "
        "DirectShow cameras go by name (`ffmpeg -list_devices true -f dshow -i dummy`), which tsm "
        "does not open: record a video and pass the file"
    )


def camera_input(index: int) -> tuple[str, str]:
    """``(file, format)`` for PyAV to open camera ``index`` here; a ValueError when there is no
    such device (naming it and the cameras found) or no way to open one by number."""
    if sys.platform.startswith("linux"):
        device = DEVICE_DIR / f"video{index}"
        if not device.exists():
            raise ValueError(f"cannot open camera {index}: {device} does not exist; {camera_help()}")
        return str(device), "v4l2"
    if sys.platform == "darwin":
        return str(index), "avfoundation"
    raise ValueError(f"cannot open camera {index} on {sys.platform}: {camera_help()}")


__all__ = ["DEVICE_DIR", "V4L2_SYSFS", "camera_help", "camera_input", "list_cameras"]
