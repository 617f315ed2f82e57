"""Frames in (image, folder, video, webcam) and results out (OpenPose JSON, overlay image or video).

Everything written goes through a temporary file that is renamed into place, so an interrupted run
never leaves a half-written JSON, image or video behind.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .._atomic import write_bytes, write_text
from .._video import VIDEO_SUFFIXES, DecodeReport, open_capture, read_frame
from ..errors import InputFileError, InvalidOptionError
from ..ops.image import IMAGE_SUFFIXES, as_bgr

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
_FOURCC = {".avi": "MJPG", ".mkv": "MJPG"}  # everything else: mp4v (OpenCV's FFmpeg writes it everywhere)


def gui_available() -> bool:
    """Whether this OpenCV build can open windows (opencv-python-headless cannot)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("NONE", "NO", "")
    return True  # unknown layout: let cv2.imshow decide


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class InputSource:
    """One thing to run on: an image, a video file, or a webcam (``path`` None, ``camera`` its index)."""

    kind: str  # image | video | webcam
    name: str  # stem used for output names
    path: Path | None = None
    camera: int | None = None

    @property
    def is_stream(self) -> bool:
        return self.kind in ("video", "webcam")


@dataclass(frozen=True)
class InputSpec:
    """What ``INPUT`` on the command line resolved to: one source, or a folder of them."""

    kind: str  # image | folder | video | webcam
    sources: tuple[InputSource, ...]
    root: Path | None = None


def resolve_input(text: str | os.PathLike) -> InputSpec:
    """Classify ``text`` as an image, a folder, a video file or a webcam index (a bare integer).

    Raises ``InputFileError`` for a missing path or a file that is neither an image nor a video.
    """
    raw = str(text)
    path = Path(raw)
    if not path.exists():
        if raw.strip().isdigit():
            index = int(raw)
            return InputSpec("webcam", (InputSource("webcam", f"webcam{index}", camera=index),))
        raise InputFileError(f"{raw}: no such file or folder (expected an image, a folder, a video or a webcam index)")
    if path.is_dir():
        sources = _folder_sources(path)
        if not sources:
            raise InputFileError(
                f"{path}: folder has no images or videos ({', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)})"
            )
        return InputSpec("folder", sources, path)
    kind = _file_kind(path)
    return InputSpec(kind, (InputSource(kind, path.stem, path),), path.parent)


def _file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise InputFileError(
        f"{path}: '{suffix or path.name}' is neither an image ({', '.join(IMAGE_SUFFIXES)}) "
        f"nor a video ({', '.join(VIDEO_SUFFIXES)})"
    )


def _folder_sources(folder: Path) -> tuple[InputSource, ...]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
    stems = [p.stem for p in files]
    sources = []
    for file in files:
        # two files with one stem (a.jpg, a.png) keep their suffix in output names
        name = file.stem if stems.count(file.stem) == 1 else file.name
        sources.append(InputSource(_file_kind(file), name, file))
    return tuple(sources)


class VideoReader:
    """Frames of a video file or webcam, BGR uint8. Iterate once; ``close()`` (or ``with``) releases it.

    FFmpeg's log stays off the terminal; frames it decoded with errors (concealed) are counted, and a frame
    that cannot be read at all ends the video there: ``decode`` says which, and one warning line is logged
    at the end. A video with no readable frame logs a warning and simply ends.
    """

    def __init__(self, source: InputSource) -> None:
        self.source = source
        target = source.camera if source.kind == "webcam" else str(source.path)
        self.decode = DecodeReport()
        self._cap = open_capture(target, self.decode)
        if not self._cap.isOpened():
            self._cap.release()
            what = f"webcam {source.camera}" if source.kind == "webcam" else str(source.path)
            raise InputFileError(f"{what}: cannot open as a video (unsupported codec, not a video, or no camera)")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not fps > 0 or not np.isfinite(fps):
            log.warning("%s: frame rate unknown; assuming %.0f fps", source.name, DEFAULT_FPS)
            fps = DEFAULT_FPS
        self.fps = fps
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count: int | None = count if count > 0 and source.kind == "video" else None
        self.decode.announced = self.frame_count
        self.frames_read = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        while self._cap is not None:
            ok, frame = read_frame(self._cap, self.frames_read, self.decode)
            if not ok or frame is None or frame.size == 0:
                break
            self.frames_read += 1
            yield as_bgr(frame, f"{self.source.name} frame {self.frames_read - 1}")
        self._report_end()

    def seek(self, index: int) -> None:
        """Continue from frame ``index`` (FFmpeg decodes from the keyframe before it; a video run in segments
        checks the frames it gets against the previous segment's)."""
        if self._cap is not None and index > 0:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, float(index))
        self.frames_read = index

    def damaged(self, index: int) -> bool:
        """Whether frame ``index`` decoded with errors (FFmpeg concealed them)."""
        return index in self.decode.damaged

    def _report_end(self) -> None:
        if self.source.kind != "video":
            return
        if self.frames_read == 0:
            log.warning("%s: no frame could be read; nothing to do", self.source.path)
            return
        if self.frame_count is not None and self.frames_read < self.frame_count:
            self.decode.stopped_at = self.frames_read
        message = self.decode.warning(str(self.source.path))
        if message:  # the one line (a Ray worker's reaches the driver through Ray's log forwarding)
            log.warning("%s", message)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- outputs


def write_openpose(path: str | os.PathLike, data: dict) -> Path:
    """Write one frame's OpenPose-style dict (see ``PoseResult.to_openpose``) atomically."""
    return write_text(path, json.dumps(data))


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Encode ``image`` by the file's suffix and write it atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InvalidOptionError(f"--vis: '{path}' has no image suffix (expected {', '.join(IMAGE_SUFFIXES)})")
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise InvalidOptionError(f"--vis: OpenCV cannot encode '{suffix}' images here")
    return write_bytes(path, encoded.tobytes())


class VideoWriter:
    """Overlay video writer, opened on the first frame (its size), written to a temporary file in the
    destination folder and renamed into place by ``close()``; ``abort()`` (or an exception inside
    ``with``) deletes the temporary file.
    """

    def __init__(self, path: str | os.PathLike, fps: float = DEFAULT_FPS) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise InvalidOptionError(f"--vis: '{self.path}' has no video suffix (expected {', '.join(VIDEO_SUFFIXES)})")
        self.fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
        self._writer: cv2.VideoWriter | None = None
        self._tmp: Path | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        height, width = frame.shape[:2]
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # the temporary keeps the real suffix: OpenCV picks the container from it
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=self.path.suffix, dir=self.path.parent)
            os.close(fd)
            self._tmp = Path(tmp)
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC.get(self.path.suffix.lower(), "mp4v"))
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                self.abort()
                suffix = self.path.suffix
                raise InvalidOptionError(f"--vis: OpenCV cannot write '{suffix}' video here; try .mp4 or .avi")
            self._size = (width, height)
        if (width, height) != self._size:
            frame = cv2.resize(frame, self._size)  # a stream that changes size mid-way keeps the first size
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file and move it into place; returns its path (None when no frame was written)."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        os.replace(self._tmp, self.path)
        self._tmp = None
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
