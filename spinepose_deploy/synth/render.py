"""Procedural renderer: posed skeletons in front of a pinhole camera, drawn with OpenCV, with ground truth.

Each figure is drawn back-to-front (figures by depth, and each figure's parts by depth) as filled limbs,
torso, head and feet in random colours, then a small marker per keypoint in that keypoint's fixed colour
with a dark rim, so a small network can localise every keypoint from pixels (left and right differ by
colour). A keypoint is *visible* when it lies inside the image and no nearer figure covers it; markers
are drawn on top of their own figure, so self-occlusion does not hide them. Boxes enclose the whole
drawn figure (clipped to the image), not just its visible part.

Deterministic: the same ``seed`` gives the same :class:`Scene`, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from ..ops.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS, SPINE_IDS
from ..paths import package_data_dir
from . import skeleton as sk

_K = KEYPOINT_INDEX
MARKER_RADIUS_M = 0.02  # marker radius in metres (at least MIN_MARKER_PX)
MIN_MARKER_PX = 2


@dataclass(frozen=True)
class RenderConfig:
    """What a scene may contain. ``image_sizes`` are (height, width)."""

    image_sizes: tuple[tuple[int, int], ...] = ((480, 640), (640, 480), (512, 512), (360, 640))
    max_people: int = 3
    dfov_deg: tuple[float, float] = (55.0, 95.0)
    depth_m: tuple[float, float] = (2.2, 9.0)
    photo_background: float = 0.35  # share of scenes on a crop of a packaged photo
    distractors: int = 6  # up to this many random shapes on the background
    noise: float = 4.0  # sigma of additive pixel noise (grey levels)
    standing: float = 0.0  # share of figures upright with flat feet (sk.sample_standing_pose), the rest any pose


@dataclass
class Scene:
    """One rendered frame and its ground truth; arrays are indexed by person, in drawing order (far first).

    image: ``(H, W, 3)`` uint8 BGR. boxes: ``(N, 4)`` xyxy pixels. keypoints: ``(N, 37, 2)`` pixels.
    visible: ``(N, 37)`` bool. keypoints_3d: ``(N, 37, 3)`` camera space, metres. intrinsics: ``(3, 3)``.
    """

    image: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    keypoints_3d: np.ndarray
    intrinsics: np.ndarray
    seed: int = 0
    meta: dict = field(default_factory=dict)


@lru_cache(maxsize=1)
def marker_colors() -> np.ndarray:
    """37 well-separated BGR colours, one per keypoint (greedy farthest point over an RGB grid)."""
    levels = np.array([0, 64, 128, 192, 255])
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3).astype(np.float64)
    grid = grid[grid.sum(1) >= 160]  # not near-black: the rim is dark
    chosen = [int(np.argmax(grid.sum(1)))]  # start at white
    dist = np.linalg.norm(grid - grid[chosen[0]], axis=1)
    while len(chosen) < NUM_KEYPOINTS:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(grid - grid[nxt], axis=1))
    return grid[chosen].astype(np.uint8)


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in sorted(package_data_dir().glob("*.jpg"))]
    return tuple(img for img in images if img is not None)


def _background(rng: np.random.Generator, height: int, width: int, config: RenderConfig) -> np.ndarray:
    kind = rng.random()
    photos = _photos()
    if photos and kind < config.photo_background:
        photo = photos[rng.integers(len(photos))]
        ph, pw = photo.shape[:2]
        # a window of the photo, 1 to 2.5 times magnified, resized once (cheaper than resizing the photo)
        zoom = rng.uniform(1.0, 2.5) * max(height / ph, width / pw)
        ch, cw = min(ph, height / zoom), min(pw, width / zoom)
        y0, x0 = rng.uniform(0, ph - ch), rng.uniform(0, pw - cw)
        window = photo[int(y0) : int(np.ceil(y0 + ch)), int(x0) : int(np.ceil(x0 + cw))]
        img = cv2.resize(window, (width, height), interpolation=cv2.INTER_LINEAR)
        return cv2.flip(img, 1) if rng.random() < 0.5 else img
    if kind < config.photo_background + 0.35:  # smooth colour field
        small = rng.integers(0, 256, (rng.integers(2, 9), rng.integers(2, 9), 3), dtype=np.uint8)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    # stripes or checks in two random colours, rotated; computed at half resolution (edges stay sharp enough)
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    period = rng.uniform(4, 40)
    theta = rng.uniform(0, np.pi)
    hh, hw = (height + 1) // 2, (width + 1) // 2
    xs, ys = np.arange(hw, dtype=np.float32), np.arange(hh, dtype=np.float32)[:, None]
    pattern = np.floor((xs * np.cos(theta) + ys * np.sin(theta)) / period).astype(np.int32)
    if rng.random() < 0.5:
        pattern += np.floor((ys * np.cos(theta) - xs * np.sin(theta)) / period).astype(np.int32)
    palette = np.stack([b, a]).astype(np.uint8)
    small = palette[pattern & 1]
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


def _distractors(img: np.ndarray, rng: np.random.Generator, count: int) -> None:
    h, w = img.shape[:2]
    for _ in range(rng.integers(0, count + 1)):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(w)), int(rng.integers(h))
        size = int(rng.integers(3, max(4, min(h, w) // 6)))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), size, color, -1)
        else:
            x2, y2 = int(x + rng.integers(-3 * size, 3 * size)), int(y + rng.integers(-3 * size, 3 * size))
            cv2.line(img, (x, y), (x2, y2), color, int(rng.integers(1, 8)))


def sample_intrinsics(rng: np.random.Generator, height: int, width: int, config: RenderConfig) -> np.ndarray:
    dfov = rng.uniform(*config.dfov_deg) * np.pi / 180.0
    f = 0.5 * np.hypot(width, height) / np.tan(0.5 * dfov)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def place_figure(rng: np.random.Generator, body_pts: np.ndarray, k: np.ndarray, hw: tuple[int, int],
           config: RenderConfig, pitch_deg: tuple[float, float] = (-12.0, 25.0)) -> np.ndarray:
    """Rotate and translate one figure into camera space; its pelvis lands inside the image. ``pitch_deg``:
    the range of the camera's pitch relative to the figure (down +)."""
    rot = sk.body_to_camera(rng.uniform(-np.pi, np.pi), rng.uniform(*pitch_deg) * np.pi / 180,
                            rng.uniform(-12, 12) * np.pi / 180)
    return place_rotated(rng, body_pts, rot, k, hw, config)


def place_rotated(rng: np.random.Generator, body_pts: np.ndarray, rot: np.ndarray, k: np.ndarray,
                  hw: tuple[int, int], config: RenderConfig) -> np.ndarray:
    """Turn one figure by ``rot`` (body -> camera) and move it to a random depth with its pelvis in the image."""
    lo, hi = np.log(config.depth_m[0]), np.log(config.depth_m[1])
    z = float(np.exp(rng.uniform(lo, hi)))
    u = rng.uniform(0.15, 0.85) * hw[1]
    v = rng.uniform(0.3, 0.75) * hw[0]
    root = np.array([(u - k[0, 2]) * z / k[0, 0], (v - k[1, 2]) * z / k[1, 1], z])
    return body_pts @ rot.T + root


def _parts(pts3d: np.ndarray) -> list[tuple[str, tuple[int, ...], float]]:
    """Drawable parts: (kind, keypoint ids, radius m). Kinds: poly (filled hull), limb (thick line)."""
    k = _K
    parts: list[tuple[str, tuple[int, ...], float]] = [
        ("poly", (k["left_shoulder"], k["right_shoulder"], k["right_latissimus"], k["right_hip"],
                  k["left_hip"], k["left_latissimus"]), 0.0),
        ("limb", (k["neck"], k["neck_03"]), sk.PART_RADIUS["neck"]),
    ]
    for side in ("left", "right"):
        parts += [
            ("limb", (k[f"{side}_shoulder"], k[f"{side}_elbow"]), sk.PART_RADIUS["upper_arm"]),
            ("limb", (k[f"{side}_elbow"], k[f"{side}_wrist"]), sk.PART_RADIUS["forearm"]),
            ("limb", (k[f"{side}_hip"], k[f"{side}_knee"]), sk.PART_RADIUS["thigh"]),
            ("limb", (k[f"{side}_knee"], k[f"{side}_ankle"]), sk.PART_RADIUS["shin"]),
            ("poly", (k[f"{side}_ankle"], k[f"{side}_heel"], k[f"{side}_small_toe"], k[f"{side}_big_toe"]), 0.0),
        ]
    return parts


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(20, 236, 3))


def _draw_figure(img: np.ndarray, mask: np.ndarray, label: int, pts3d: np.ndarray, k: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Draw one figure (parts back-to-front, then markers); return the drawn extent ``(x0, y0, x1, y1)``."""
    uv = sk.project(pts3d, k)
    f = k[0, 0]
    z = pts3d[:, 2]
    shirt, trousers, skin, shoes = _colour(rng), _colour(rng), _colour(rng), _colour(rng)
    lo, hi = uv.min(axis=0), uv.max(axis=0)

    def grow(p: np.ndarray, r: float) -> None:
        nonlocal lo, hi
        lo, hi = np.minimum(lo, p - r), np.maximum(hi, p + r)

    items = []  # (depth, draw callable args)
    for kind, ids, radius in _parts(pts3d):
        lower = ids[0] in (_K["left_hip"], _K["right_hip"], _K["left_knee"], _K["right_knee"])
        color = trousers if lower else shoes if kind == "poly" and len(ids) == 4 else shirt
        if ids == (_K["neck"], _K["neck_03"]) or ids[0] in (_K["left_elbow"], _K["right_elbow"]):
            color = skin if ids[0] == _K["neck"] else shirt
        items.append((float(z[list(ids)].mean()), kind, ids, radius, color))
    centre = sk.head_centre(pts3d)
    items.append((float(centre[2]), "head", (), sk.PART_RADIUS["head"] * _scale_of(pts3d), skin))
    for _, kind, ids, radius, color in sorted(items, key=lambda it: -it[0]):
        if kind == "poly":
            hull = cv2.convexHull(np.round(uv[list(ids)] * 16).astype(np.int32))
            cv2.fillConvexPoly(img, hull, color, cv2.LINE_AA, 4)
            cv2.fillConvexPoly(mask, hull, label, cv2.LINE_8, 4)
        elif kind == "limb":
            a, b = ids
            width = max(2, round(2 * radius * f / max(0.5 * (z[a] + z[b]), 1e-3)))
            p, q = _pt(uv[a]), _pt(uv[b])
            cv2.line(img, p, q, color, width, cv2.LINE_AA)
            cv2.line(mask, p, q, label, width)
            grow(uv[a], width / 2)
            grow(uv[b], width / 2)
        else:
            c2 = sk.project(centre, k)
            r = max(2, round(radius * f / max(centre[2], 1e-3)))
            cv2.circle(img, _pt(c2), r, color, -1, cv2.LINE_AA)
            cv2.circle(mask, _pt(c2), r, label, -1)
            grow(c2, r)
    # spine as a thin dark line, then the markers, far keypoints first
    spine = np.array([_pt(uv[j]) for j in SPINE_IDS], np.int32)
    cv2.polylines(img, [spine], False, (40, 40, 40), max(1, round(0.01 * f / float(np.mean(z)))), cv2.LINE_AA)
    colors = marker_colors()
    for j in np.argsort(-z):
        r = max(MIN_MARKER_PX, round(MARKER_RADIUS_M * f / max(z[j], 1e-3)))
        p = _pt(uv[j])
        cv2.circle(img, p, r + 1, (20, 20, 20), -1, cv2.LINE_AA)
        cv2.circle(img, p, r, tuple(int(c) for c in colors[j]), -1, cv2.LINE_AA)
        cv2.circle(mask, p, r + 1, label, -1)
        grow(uv[j], r + 1)
    return np.concatenate([lo, hi])


def _scale_of(pts3d: np.ndarray) -> float:
    # body scale from the hip -> C1 chain length (0.61 m at scale 1)
    chain = pts3d[list(SPINE_IDS)]
    return float(np.linalg.norm(np.diff(chain, axis=0), axis=1).sum() / 0.61)


def _pt(p: np.ndarray) -> tuple[int, int]:
    # clamped: OpenCV takes int32 coordinates; a point far behind the image must not overflow
    return min(max(round(float(p[0])), -100_000), 100_000), min(max(round(float(p[1])), -100_000), 100_000)


@lru_cache(maxsize=4)
def _noise_tiles(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Fixed 1024x1024x3 normal noise (``sigma`` grey levels) split into its positive and negative parts, uint8.

    Scenes take random windows of it and apply both with saturating adds: fast and deterministic.
    """
    noise = np.random.default_rng(0x401CE).standard_normal((1024, 1024, 3)) * sigma
    return np.clip(np.round(noise), 0, 255).astype(np.uint8), np.clip(np.round(-noise), 0, 255).astype(np.uint8)


def visibility(keypoints: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(N, K)`` True where keypoint ``(N, K, 2)`` lies in the image on its own figure (``mask`` label ``i + 1``)."""
    height, width = mask.shape
    visible = np.zeros(keypoints.shape[:2], bool)
    for i in range(len(keypoints)):
        u, v = np.round(keypoints[i, :, 0]).astype(int), np.round(keypoints[i, :, 1]).astype(int)
        inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
        owner = np.zeros(keypoints.shape[1], np.uint8)
        owner[inside] = mask[v[inside], u[inside]]
        visible[i] = inside & (owner == i + 1)
    return visible


def render_scene(seed: int, config: RenderConfig = RenderConfig(), people: int | None = None) -> Scene:
    """Render one frame with 1..``config.max_people`` figures (or exactly ``people``); same seed, same Scene."""
    rng = np.random.default_rng(np.random.SeedSequence([0x5EED, int(seed)]))
    height, width = config.image_sizes[rng.integers(len(config.image_sizes))]
    k = sample_intrinsics(rng, height, width, config)
    img = _background(rng, height, width, config)
    _distractors(img, rng, config.distractors)
    count = int(people) if people is not None else int(rng.integers(1, config.max_people + 1))
    figures = []
    for _ in range(count):
        body = sk.sample_body(rng)
        # the draw only when asked: scenes of the default config stay what they were (held-out set included)
        upright = config.standing > 0 and rng.random() < config.standing
        pose = sk.sample_standing_pose(rng) if upright else sk.sample_pose(rng)
        body_pts = sk.forward_kinematics(body, pose, flat_feet=upright)
        figures.append(place_figure(rng, body_pts, k, (height, width), config))
    return draw_figures(img, figures, k, rng, config, seed)


def draw_figures(img: np.ndarray, figures: list[np.ndarray], k: np.ndarray, rng: np.random.Generator,
                 config: RenderConfig, seed: int = 0) -> Scene:
    """Draw camera-space figures ``(37, 3)`` on the background ``img`` (in place) and measure the truth."""
    height, width = img.shape[:2]
    count = len(figures)
    figures = sorted(figures, key=lambda pts: -float(pts[_K["hip"], 2]))  # far first
    mask = np.zeros((height, width), np.uint8)
    boxes, kpts = [], []
    for i, pts in enumerate(figures):
        extent = _draw_figure(img, mask, i + 1, pts, k, rng)
        boxes.append(np.clip(extent, 0, [width, height, width, height]))
        kpts.append(sk.project(pts, k))
    if config.noise > 0 and height <= 1024 and width <= 1024:
        plus, minus = _noise_tiles(float(config.noise))
        y0, x0 = int(rng.integers(0, 1024 - height + 1)), int(rng.integers(0, 1024 - width + 1))
        img = cv2.subtract(cv2.add(img, plus[y0 : y0 + height, x0 : x0 + width]),
                           minus[y0 : y0 + height, x0 : x0 + width])
    keypoints = np.asarray(kpts, np.float32).reshape(count, NUM_KEYPOINTS, 2)
    visible = visibility(keypoints, mask)
    return Scene(
        image=img,
        boxes=np.asarray(boxes, np.float32).reshape(count, 4),
        keypoints=keypoints,
        visible=visible,
        keypoints_3d=np.asarray(figures, np.float32).reshape(count, NUM_KEYPOINTS, 3),
        intrinsics=k.astype(np.float32),
        seed=int(seed),
        meta={"size": (height, width)},
    )
