"""The picture in docs/spine.md: the spine angles drawn on a synthetic figure (side, front and top views).

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
from spinepose_deploy.spine.angles import INNER_POINTS, LEVELS, spine_angles
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


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    plt = pyplot("spine_figure")
    arms = ((10 * DEG, 40 * DEG, 0.0, 30 * DEG),) * 2
    legs = ((4 * DEG, 10 * DEG, 0.0, 15 * DEG, 0.0),) * 2
    pose = sk.Pose((45 * DEG, 15 * DEG, 25 * DEG), (0.0, 15 * DEG, 0.0), arms, legs)  # type: ignore[arg-type]
    body = sk.forward_kinematics(sk.Body(), pose)  # x left, y up, z forward; the hip line is x
    body[:, 1] -= body[:, 1].min()
    angles = spine_angles(np.zeros((37, 2)), np.ones(37), body)
    fig, axes = plt.subplots(1, 3, figsize=(13, 5.6))
    # side view: forward to the right, up
    side = body[:, [2, 1]]
    _view(axes[0], side, "side (sagittal): flex_<point>, trunk_incl, neck_incl; forward +")
    _labels(axes[0], side, [f"{n} ~{LEVELS[n]}: flex {angles[f'flex_{n}']:+.1f}" for n in INNER_POINTS])
    hip, neck = side[K["hip"]], side[K["neck"]]
    axes[0].plot([hip[0], hip[0]], [hip[1], neck[1]], "k--", linewidth=1)
    axes[0].plot([hip[0], neck[0]], [hip[1], neck[1]], color="tab:green", linewidth=1.5)
    axes[0].annotate(f"trunk_incl {angles['trunk_incl']:+.1f}", hip, xytext=(-80, 40), textcoords="offset points",
                     color="tab:green", fontsize=8)  # fmt: skip
    axes[0].annotate(f"neck_incl {angles['neck_incl']:+.1f}", side[K["neck_03"]], xytext=(-40, 18),
                     textcoords="offset points", color="tab:green", fontsize=8)  # fmt: skip
    regions = (f"lumbar_flex {angles['lumbar_flex']:+.1f}\nthoracic_flex {angles['thoracic_flex']:+.1f}\n"
               f"cervical_flex {angles['cervical_flex']:+.1f}")  # fmt: skip
    axes[0].text(0.02, 0.02, regions, transform=axes[0].transAxes, fontsize=8, va="bottom")
    # front view, seen from the front: the person's left on the image right
    front = body[:, [0, 1]]
    _view(axes[1], front, "front (coronal): lat_<point>, trunk_lean; person's left +")
    _labels(axes[1], front, [f"{n}: lat {angles[f'lat_{n}']:+.1f}" for n in INNER_POINTS])
    axes[1].text(0.02, 0.02, f"trunk_lean {angles['trunk_lean']:+.1f}\nlumbar_lat {angles['lumbar_lat']:+.1f}",
                 transform=axes[1].transAxes, fontsize=8)  # fmt: skip
    # top view from above, forward up the page
    top = body[:, [0, 2]] * [-1.0, 1.0]  # seen from above: the person's right on the page right
    axes[2].set_title("top (axial): twist = shoulder line vs hip line; to the left +", fontsize=9)
    for (a, b), colour in (((K["left_hip"], K["right_hip"]), "tab:orange"),
                           ((K["left_shoulder"], K["right_shoulder"]), "tab:purple")):  # fmt: skip
        line = top[[a, b]] - top[[a, b]].mean(axis=0)  # both through the centre: only their directions matter
        axes[2].plot(line[:, 0], line[:, 1], color=colour, linewidth=3)
    axes[2].legend(["hip line", "shoulder line"], fontsize=8, loc="upper right")
    axes[2].text(0.02, 0.02, f"twist {angles['twist']:+.1f}", transform=axes[2].transAxes, fontsize=9)
    axes[2].set_aspect("equal")
    axes[2].set_xticks([])
    axes[2].set_yticks([])
    fig.suptitle("spinepose_deploy.spine on a synthetic figure (flexion 45, lateral bend 15, twist 25 degrees in the "
                 "model; degrees). Not for clinical use.", fontsize=9)  # fmt: skip
    fig.tight_layout()
    return save_png(fig, args.out, dpi=100)


if __name__ == "__main__":
    print(main())
