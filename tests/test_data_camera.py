"""Cameras by number (``tsm stream 0``): the error names the missing device and the cameras found on
Linux, and says how cameras are found on macOS and Windows. The system is faked: ``sys.platform``
and the folders of the Linux devices and their names point at the test's own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tsm.data import camera, open_frames


@pytest.fixture
def linux(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    devices, sysfs = tmp_path / "dev", tmp_path / "sys"
    devices.mkdir()
    sysfs.mkdir()
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(camera, "DEVICE_DIR", devices)
    monkeypatch.setattr(camera, "V4L2_SYSFS", sysfs)
    return devices, sysfs


def _device(devices: Path, sysfs: Path, name: str, label: str | None = None) -> None:
    (devices / name).write_bytes(b"")  # a file, not a capture device
    if label is not None:
        (sysfs / name).mkdir()
        (sysfs / name / "name").write_text(f"{label}\n")


def test_a_missing_linux_camera_is_named_with_the_cameras_found(linux) -> None:
    devices, sysfs = linux
    _device(devices, sysfs, "video10")
    _device(devices, sysfs, "video2", "USB Camera: HD Webcam")
    _device(devices, sysfs, "video-other")  # not a video device node
    with pytest.raises(ValueError) as refused:
        open_frames(0)
    assert str(refused.value) == (
        f"cannot open camera 0: {devices / 'video0'} does not exist; cameras found: "
        f"{devices / 'video2'} (USB Camera: HD Webcam), {devices / 'video10'}; pass the number of one"
    )


def test_no_linux_camera_at_all(linux) -> None:
    devices, _ = linux
    with pytest.raises(ValueError) as refused:
        open_frames("0")
    assert str(refused.value) == (
        f"cannot open camera 0: {devices / 'video0'} does not exist; "
        f"no camera found (no {devices}/video* device: is one connected and readable?)"
    )
    assert camera.list_cameras() == []


def test_a_linux_device_that_does_not_open_is_named_with_the_reason(linux) -> None:
    devices, sysfs = linux
    _device(devices, sysfs, "video0", "metadata node")
    with pytest.raises(ValueError) as refused:
        open_frames(0)
    message = str(refused.value)
    assert message.startswith(f"cannot open camera 0 ({devices / 'video0'}, v4l2): ")
    assert message.endswith(f"cameras found: {devices / 'video0'} (metadata node); pass the number of one")
    assert "avfoundation" not in message and "\n" not in message


def test_macos_says_how_its_cameras_are_numbered(monkeypatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert camera.camera_input(1) == ("1", "avfoundation")
    assert "ffmpeg -f avfoundation -list_devices true" in camera.camera_help()
    assert "Privacy & Security > Camera" in camera.camera_help()


def test_windows_says_how_cameras_are_found(monkeypatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(ValueError) as refused:
        open_frames(0)
    message = str(refused.value)
    assert message.startswith("cannot open camera 0 on win32: cameras are opened by number on Linux")
    assert "ffmpeg -list_devices true -f dshow -i dummy" in message and "pass the file" in message
