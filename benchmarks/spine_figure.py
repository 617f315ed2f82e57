"""The picture in docs/spine.md: the spine angles drawn on a synthetic figure (side, front, segment frames).

    python benchmarks/spine_figure.py                   # writes docs/spine_angles.png

The figure is the synthetic skeleton (``synth.skeleton``) in a known pose; every number printed on the
picture is computed by ``spinepose_deploy.spine.spine_angles`` from its keypoints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from spinepose_deploy._charts import pyplot, save_png
from spinepose_deploy.ops.skeleton import KEYPOINT_INDEX, LINKS, SPINE_IDS
from spinepose_deploy.spine.angles import ANGLE_NAMES, INNER_POINTS, LEVELS, segment_frames, spine_angles
from spinepose_deploy.synth import skeleton as sk

K = KEYPOINT_INDEX
DEG = np.pi / 180
OUT = Path(__file__).resolve().parent.parent / "docs" / "spine_angles.png"


def _view(ax, points2d: np.ndarray, title: str) -> None:
    for a, b in LINKS:
        ax.plot(points2d[[a, b], 0], points2d[[a, b], 1], color="0.7", linewidth=1.5, zorder=1)
    chain = points2d[list(SPINE_IDS)]
    ax.plot(chain[:, 0], chain[:, 1], color="tab:blue", linewidth=3, zorder=2)
    ax.scatter(chain[:, 0], chain[:, 1], s=22, color="tab:red", zorder=3)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _labels(ax, points2d: np.ndarray, texts: list[str]) -> None:
    """Label the inner spine points in a column to the right, with leader lines (they sit too close)."""
    inner = points2d[[K[n] for n in INNER_POINTS]]
    x = points2d[:, 0].max() + 0.12
    ys = np.linspace(inner[:, 1].min() - 0.05, inner[:, 1].max() + 0.1, len(texts))
    for p, y, text in zip(inner, ys, texts, strict=True):
        ax.annotate(text, p, xytext=(x, y), fontsize=7, va="center",
                    arrowprops={"arrowstyle": "-", "color": "0.5", "linewidth": 0.6})  # fmt: skip
    ax.set_xlim(points2d[:, 0].min() - 0.1, x + 0.55)


def _frames(ax, body: np.ndarray, frames: dict, cols: list[int], signs: list[float]) -> None:
    """Draw the pelvis, thorax and head frames' axes (X anterior red, Y superior green, Z right blue)."""
    origins = {"pelvis": 0.5 * (body[K["left_hip"]] + body[K["right_hip"]]), "thorax": body[K["neck"]],
               "head": 0.5 * (body[K["left_ear"]] + body[K["right_ear"]])}  # fmt: skip
    for name, origin in origins.items():
        for axis, colour in enumerate(("tab:red", "tab:green", "tab:blue")):
            tip = origin + 0.12 * frames[name][:, axis]
            xy = np.array([[origin[c] * g for c, g in zip(cols, signs, strict=True)],
                           [tip[c] * g for c, g in zip(cols, signs, strict=True)]])  # fmt: skip
            ax.annotate("", xy[1], xytext=xy[0], arrowprops={"arrowstyle": "->", "color": colour, "linewidth": 1.4})


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    plt = pyplot("spine_figure")
    arms = ((10 * DEG, 40 * DEG, 0.0, 30 * DEG),) * 2
    legs = ((4 * DEG, 10 * DEG, 0.0, 15 * DEG, 0.0),) * 2
    pose = sk.Pose((45 * DEG, 15 * DEG, 25 * DEG), (0.0, 15 * DEG, 0.0), arms, legs)  # type: ignore[arg-type]
    body = sk.forward_kinematics(sk.Body(), pose, flat_feet=True)  # x left, y up, z forward; the hip line is x
    body[:, 1] -= body[:, 1].min()
    angles = spine_angles(np.zeros((37, 2)), np.ones(37), body)
    frames = segment_frames(body)
    fig, axes = plt.subplots(1, 3, figsize=(14, 5.8))
    # side view: forward to the right, up
    side = body[:, [2, 1]]
    _view(axes[0], side, "side: regional curvature (fit), ISO 11226 inclinations; forward +")
    _labels(axes[0], side, [f"{n} ~{LEVELS[n]}: flex {angles[f'flex_{n}']:+.1f}" for n in INNER_POINTS])
    hips = 0.5 * (side[K["left_hip"]] + side[K["right_hip"]])
    neck = side[K["neck"]]
    ears = 0.5 * (side[K["left_ear"]] + side[K["right_ear"]])
    axes[0].plot([hips[0], hips[0]], [hips[1], neck[1]], "k--", linewidth=1)
    axes[0].plot([hips[0], neck[0]], [hips[1], neck[1]], color="tab:green", linewidth=1.5)
    axes[0].plot([neck[0], ears[0]], [neck[1], ears[1]], color="tab:olive", linewidth=1.5)
    axes[0].annotate(f"trunk_incl {angles['trunk_incl']:+.1f}\n(hip joints -> C7)", hips, xytext=(-95, 40),
                     textcoords="offset points", color="tab:green", fontsize=8)  # fmt: skip
    axes[0].annotate(f"neck_incl {angles['neck_incl']:+.1f}\n(C7 -> ears)", ears, xytext=(-50, 18),
                     textcoords="offset points", color="tab:olive", fontsize=8)  # fmt: skip
    regions = (f"lumbar_flex {angles['lumbar_flex']:+.1f}\nthoracic_flex {angles['thoracic_flex']:+.1f}\n"
               f"cervical_flex {angles['cervical_flex']:+.1f}")  # fmt: skip
    axes[0].text(0.02, 0.02, regions, transform=axes[0].transAxes, fontsize=8, va="bottom")
    # front view, seen from the front: the person's left on the image right
    front = body[:, [0, 1]]
    _view(axes[1], front, "front: lateral bending, person's left +")
    _labels(axes[1], front, [f"{n}: lat {angles[f'lat_{n}']:+.1f}" for n in INNER_POINTS])
    axes[1].text(0.02, 0.02, f"trunk_lean {angles['trunk_lean']:+.1f}\nlumbar_lat {angles['lumbar_lat']:+.1f}\n"
                 f"thoracic_lat {angles['thoracic_lat']:+.1f}", transform=axes[1].transAxes, fontsize=8)  # fmt: skip
    # segment frames and the Cardan angles, seen obliquely from the front-right
    view = sk.ry(-35 * DEG) @ body.T
    oblique = view.T[:, [0, 1]]
    _view(axes[2], oblique, "segment frames (X anterior red, Y superior green, Z right blue)")
    turned = {n: sk.ry(-35 * DEG) @ f for n, f in frames.items()}
    _frames(axes[2], view.T, turned, [0, 1], [1.0, 1.0])
    text = "\n".join(f"{j}: flex {angles[f'{j}_flex']:+.1f}  lat {angles[f'{j}_lat']:+.1f}"
                     + (f"  rot {angles[f'{j}_rot']:+.1f}" if f"{j}_rot" in ANGLE_NAMES else "")
                     for j in ("lumbar_pelvis", "thorax_pelvis", "head_thorax"))  # fmt: skip
    axes[2].text(0.02, 0.02, text + "\n(Z-X-Y Cardan of the distal frame in the proximal one)",
                 transform=axes[2].transAxes, fontsize=8)  # fmt: skip
    fig.suptitle("spinepose_deploy.spine on a synthetic figure (spine flexion 45, lateral bend 15, twist 25 degrees "
                 "shared along the chain in the model; degrees). Not for clinical use.", fontsize=9)  # fmt: skip
    fig.tight_layout()
    return save_png(fig, args.out, dpi=100)


if __name__ == "__main__":
    print(main())
