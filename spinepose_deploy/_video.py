"""Video decoding through OpenCV's FFmpeg, with FFmpeg's log kept off the terminal and counted per frame.

FFmpeg writes every decoding complaint straight to the process's stderr (a 30-frame MP4 with 4 KB zeroed
prints ~4,000 ``[mpeg4 @ 0x...] marker does not match f_code`` lines) and OpenCV then returns the frame,
concealed, as if nothing happened: the log is the only sign of damage. So each ``read`` runs with file
descriptor 2 pointed at a temporary file: FFmpeg's lines (``[codec @ 0x...] ...``) are counted against the
frame being read and dropped (logged at DEBUG), anything else written meanwhile (another thread's output) is
passed back to the real stderr. One decoding thread per capture, so a complaint belongs to the frame whose
``read`` logged it (FFmpeg's frame threads would log it one or more frames late).

On Windows FFmpeg's DLL writes through its own C runtime, which a descriptor swap does not reach: there
the log is silenced with ``OPENCV_FFMPEG_LOGLEVEL`` (read when OpenCV first initialises FFmpeg) and damage
is not counted.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import cv2

log = logging.getLogger(__name__)
# video files infer reads and --calib accepts (one list: a file one takes, the other takes too)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
T = TypeVar("T")

_FFMPEG_LINE = re.compile(rb"^\[[^\]\n]+ @ (?:0x)?[0-9a-fA-F]+\] ")
_LOCK = threading.Lock()  # one descriptor swap at a time, process-wide
_COUNTED = os.name != "nt"
if not _COUNTED:
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


@dataclass
class DecodeReport:
    """Which frames of one video decoded with errors (concealed) and where reading stopped, if early."""

    damaged: list[int] = field(default_factory=list)  # frame indices whose decoding logged an error
    messages: int = 0  # FFmpeg log lines swallowed
    first_message: str = ""
    stopped_at: int | None = None  # the first frame that could not be read at all; reading stopped there
    announced: int | None = None  # the container's frame count, when it has one
    counted: bool = _COUNTED  # False where the log cannot be captured (Windows): no damage count

    @property
    def ok(self) -> bool:
        return not self.damaged and self.stopped_at is None

    def to_dict(self) -> dict:
        return {
            "damaged_frames": len(self.damaged),
            "first_damaged_frame": self.damaged[0] if self.damaged else None,
            "stopped_at_frame": self.stopped_at,
            "announced_frames": self.announced,
            "ffmpeg_messages": self.messages,
            "first_message": self.first_message,
            "counted": self.counted,
        }

    def warning(self, what: str) -> str | None:
        """One line for the user, or None when the video decoded cleanly."""
        parts = []
        if self.damaged:
            parts.append(
                f"{len(self.damaged)} frame(s) decoded with errors and were concealed by FFmpeg, the first at "
                f"frame {self.damaged[0]} ({self.messages} FFmpeg messages, first: {self.first_message!r})"
            )
        if self.stopped_at is not None:
            of = f" of the {self.announced} frames its header announces" if self.announced else ""
            parts.append(f"video ended after {self.stopped_at}{of}: frame {self.stopped_at} could not be read")
        return f"{what}: damaged video: " + "; ".join(parts) if parts else None

    def note(self, index: int, lines: list[str]) -> None:
        """Count ``lines`` (FFmpeg's complaints) against frame ``index``."""
        if not lines:
            return
        self.messages += len(lines)
        self.first_message = self.first_message or lines[0]
        if index >= 0 and (not self.damaged or self.damaged[-1] != index):
            self.damaged.append(index)


_SINK: list = []  # one capture file per process, reused for every read (a new file per frame cost a syscall storm)


def _sink():
    """The process's capture file, emptied (callers hold ``_LOCK``)."""
    if not _SINK:
        _SINK.append(tempfile.TemporaryFile())  # noqa: SIM115 (kept open for the process; the OS removes it)
    sink = _SINK[0]
    sink.seek(0)
    sink.truncate()
    return sink


def quietly(call: Callable[[], T]) -> tuple[T, list[str]]:
    """Run ``call`` with FFmpeg's stderr lines captured: (its result, those lines as text)."""
    if not _COUNTED:
        return call(), []
    with _LOCK:
        sink = _sink()
        if sys.stderr is not None:
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all (a daemon): nothing to keep quiet
            return call(), []
        os.dup2(sink.fileno(), 2)
        try:
            result = call()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        written = sink.read()
    ffmpeg, other = [], []
    for line in written.splitlines(keepends=True):
        (ffmpeg if _FFMPEG_LINE.match(line) else other).append(line)
    if other:  # not FFmpeg's: someone else's output, give it back
        os.write(2, b"".join(other))
    lines = [line.decode("utf-8", "replace").rstrip() for line in ffmpeg]
    for line in lines:
        log.debug("ffmpeg: %s", line)
    return result, lines


def open_capture(target: str | int, report: DecodeReport | None = None) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` with one decoding thread (see the module docstring), opened quietly."""
    if isinstance(target, int):  # a webcam: whatever backend OpenCV picks, as before
        return cv2.VideoCapture(target)
    capture, lines = quietly(lambda: cv2.VideoCapture(target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1]))
    if not capture.isOpened():  # not something FFmpeg reads: let OpenCV try its other backends
        capture.release()
        capture, more = quietly(lambda: cv2.VideoCapture(target))
        lines += more
    if report is not None:
        report.note(-1, lines)
    return capture


def read_frame(capture: cv2.VideoCapture, index: int, report: DecodeReport) -> tuple[bool, object]:
    """``capture.read()`` quietly, FFmpeg's complaints counted against frame ``index``."""
    (ok, frame), lines = quietly(capture.read)
    report.note(index, lines)
    return ok, frame
