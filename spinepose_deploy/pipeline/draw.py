"""Overlays: the 37-keypoint skeleton with the spine emphasised, a 3D side panel, a STAND-IN label.

Colours and the keypoint look (white ring, coloured fill) follow upstream's ``draw_mmpose``; the spine
links (hip .. C1 .. head) are drawn twice as thick over a dark outline so they stand out. Sizes come from
``skeleton.overlay_sizes``, which never returns 0 (upstream crashes on images narrower than 400 px).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..ops.skeleton import KEYPOINT_COLORS_BGR, LINK_COLORS_BGR, LINKS, SPINE_IDS, SPINE_LINKS, overlay_sizes
from .result import PoseResult

KPT_THR = 0.5  # upstream draws keypoints scoring >= 0.5
PANEL_BG = 18
_SPINE_LINK_SET = frozenset(SPINE_LINKS)


def spine_only_scores(scores: np.ndarray) -> np.ndarray:
    """Scores ``(N, K)`` with every non-spine keypoint zeroed (upstream ``--spine-only`` drawing)."""
    out = np.zeros_like(scores)
    ids = list(SPINE_IDS)
    out[:, ids] = scores[:, ids]
    return out


def draw_skeleton(
    image: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    *,
    kpt_thr: float = KPT_THR,
    track_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Draw poses ``(N, K, 2)`` with scores ``(N, K)`` on a copy of ``image`` (BGR)."""
    canvas = image.copy()
    radius, width = overlay_sizes(canvas.shape[1])
    for n in range(len(keypoints)):
        points = np.asarray(keypoints[n], dtype=np.float64)
        visible = np.asarray(scores[n]) >= kpt_thr
        pixels = [(int(x), int(y)) for x, y in points]
        for index, (a, b) in enumerate(LINKS):
            if not (visible[a] and visible[b]):
                continue
            if index in _SPINE_LINK_SET:
                cv2.line(canvas, pixels[a], pixels[b], (40, 40, 40), 2 * width + 2, cv2.LINE_AA)
                cv2.line(canvas, pixels[a], pixels[b], LINK_COLORS_BGR[index], 2 * width, cv2.LINE_AA)
            else:
                cv2.line(canvas, pixels[a], pixels[b], LINK_COLORS_BGR[index], width, cv2.LINE_AA)
        for k in np.flatnonzero(visible):
            cv2.circle(canvas, pixels[k], radius + width, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(canvas, pixels[k], radius, KEYPOINT_COLORS_BGR[k], -1, cv2.LINE_AA)
        if track_ids is not None and int(track_ids[n]) >= 0 and visible.any():
            top = points[visible][np.argmin(points[visible, 1])]
            _label(canvas, f"#{int(track_ids[n])}", (int(top[0]), int(top[1]) - radius - 2 * width - 4))
    return canvas


def _label(canvas: np.ndarray, text: str, origin: tuple[int, int], color=(255, 255, 255), bg=(0, 0, 0)) -> None:
    scale = max(0.4, canvas.shape[1] / 1600)
    thickness = max(1, int(round(scale * 2)))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x = int(np.clip(origin[0], 0, max(0, canvas.shape[1] - w)))
    y = int(np.clip(origin[1], h + 2, max(h + 2, canvas.shape[0] - base)))
    cv2.rectangle(canvas, (x - 2, y - h - 2), (x + w + 2, y + base), bg, -1)
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)


def draw_panel(
    points: np.ndarray, scores: np.ndarray, size_wh: tuple[int, int], *, world: bool, kpt_thr: float = KPT_THR
) -> np.ndarray:
    """Orthographic front (X/Y) and side (Z/Y) views of 3D poses ``(N, K, 3)``, stacked, ``size_wh`` BGR.

    ``world``: points have y up (world space); otherwise camera space (y down) and y is flipped.
    """
    width, height = int(size_wh[0]), int(size_wh[1])
    panel = np.full((height, width, 3), PANEL_BG, dtype=np.uint8)
    pts = np.asarray(points, dtype=np.float32).reshape(-1, points.shape[-2], 3).copy()
    if not world:
        pts[..., 1] *= -1.0
    vis = np.asarray(scores).reshape(pts.shape[:2]) >= kpt_thr
    half = height // 2
    for row, (axis, name) in enumerate(((0, "front X/Y"), (2, "side Z/Y"))):
        view = panel[row * half : (row + 1) * half]
        _draw_view(view, pts[..., [axis, 1]], vis, world)
        _label(view, f"{'world' if world else 'camera'} {name}", (6, 20), (230, 230, 230), (PANEL_BG,) * 3)
    cv2.line(panel, (0, half), (width, half), (70, 70, 70), 1)
    return panel


def _draw_view(view: np.ndarray, xy: np.ndarray, visible: np.ndarray, world: bool) -> None:
    """One orthographic view: a shared scale for all people (as upstream's world panel), y up."""
    height, width = view.shape[:2]
    seen = xy[visible]
    if len(seen) == 0:
        return
    center = 0.5 * (seen.min(axis=0) + seen.max(axis=0))
    radius = max(1e-3, float(np.abs(seen - center).max()) * 1.2)
    scale = 0.5 * min(width, height) / radius

    def project(p: np.ndarray) -> tuple[int, int]:
        return int(round(width / 2 + (p[0] - center[0]) * scale)), int(round(height / 2 - (p[1] - center[1]) * scale))

    if world:  # the ground (y = 0)
        ground = project(np.array([center[0], 0.0]))[1]
        if 0 <= ground < height:
            cv2.line(view, (0, ground), (width, ground), (80, 80, 80), 1, cv2.LINE_AA)
    for person, seen_k in zip(xy, visible, strict=True):
        for index, (a, b) in enumerate(LINKS):
            if seen_k[a] and seen_k[b]:
                thick = 3 if index in _SPINE_LINK_SET else 1
                cv2.line(view, project(person[a]), project(person[b]), LINK_COLORS_BGR[index], thick, cv2.LINE_AA)
        for k in np.flatnonzero(seen_k):
            cv2.circle(view, project(person[k]), 2, KEYPOINT_COLORS_BGR[k], -1, cv2.LINE_AA)


def draw_result(image: np.ndarray, result: PoseResult, *, spine_only: bool = False, panel: bool = True) -> np.ndarray:
    """The overlay for one frame: skeletons, track ids, a 3D panel on the right when there is 3D, and a
    STAND-IN label when the result came from stand-in graphs."""
    scores = spine_only_scores(result.scores) if spine_only else result.scores
    canvas = draw_skeleton(image, result.keypoints, scores, track_ids=result.track_ids)
    points = result.keypoints_3d_world if result.keypoints_3d_world is not None else result.keypoints_3d
    if panel and points is not None:
        size = (max(160, canvas.shape[1] // 3), canvas.shape[0])
        side = draw_panel(points, scores, size, world=result.keypoints_3d_world is not None)
        canvas = np.concatenate([canvas, side], axis=1)
    if result.standin:
        _label(canvas, "STAND-IN weights (not SpinePose)", (8, 8), (255, 255, 255), (0, 0, 200))
    return canvas
