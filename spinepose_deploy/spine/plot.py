"""``infer --spine-plot``: each track's main spine angles over time, one panel per angle (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._charts import pyplot, save_png
from .summary import ZONES
from .table import AngleTable

# what a coach or an ergonomist looks at first; the 3D names when lifted, else the image-plane ones
PANELS_3D = (("trunk_incl", "trunk inclination (forward +)"), ("trunk_lean", "trunk lateral lean (left +)"),
             ("neck_incl", "neck inclination (forward +)"), ("lumbar_flex", "lumbar flexion"),
             ("thoracic_flex", "thoracic flexion"),
             ("thorax_pelvis_rot", "axial rotation, thorax vs pelvis (left +)"))
PANELS_2D = (("trunk_incl2d", "trunk vs image vertical"), ("neck_incl2d", "neck vs image vertical"),
             ("lumbar2d", "lumbar bend (image plane)"), ("thoracic2d", "thoracic bend (image plane)"),
             ("cervical2d", "cervical bend (image plane)"))
OPTION = "--spine-plot"
_BOUNDS = {name: bounds for names, bounds in ZONES.values() for name in names}


def write_plot(table: AngleTable, path: str | Path, title: str = "") -> Path:
    """PNG of ``table``'s angles over time (frame index where there is no time), one line per track."""
    return save_png(draw_plot(table, title), path)


def draw_plot(table: AngleTable, title: str = "", option: str = OPTION) -> object:
    """The matplotlib figure of :func:`write_plot`; the trunk / neck panels show the zone bounds (dashed)."""
    plt = pyplot(option)
    panels = PANELS_3D if len(table) and np.isfinite(table.column(PANELS_3D[0][0])).any() else PANELS_2D
    keys = table.keys
    tracks = sorted({(k[0], k[3]) for k in keys})
    timed = bool(keys) and all(k[2] is not None for k in keys)
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.9 * len(panels) + 0.8), sharex=True, squeeze=False)
    colours = plt.get_cmap("tab10")
    several_sources = len({k[0] for k in keys}) > 1
    for ax, (name, label) in zip(axes[:, 0], panels, strict=True):
        values = table.column(name)
        for index, (source, track) in enumerate(tracks):
            rows = [i for i, k in enumerate(keys) if (k[0], k[3]) == (source, track)]
            x = [keys[i][2] if timed else keys[i][1] for i in rows]
            text = f"{source} #{track}" if several_sources else f"track {track}"
            # markers too: a still image gives a track of one point, which a bare line would not show
            ax.plot(x, values[rows], color=colours(index % 10), linewidth=1.2, marker="o", markersize=2, label=text)
        for bound in _BOUNDS.get(name, ()):
            ax.axhline(bound, color="0.5", linestyle="--", linewidth=0.8)
        ax.set_ylabel("deg")
        ax.set_title(label, fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time, s" if timed else "frame")
    if tracks:
        axes[0, 0].legend(fontsize=7, ncol=min(len(tracks), 6), loc="upper right")
    fig.suptitle(title or "spine angles", fontsize=10)
    fig.tight_layout()
    return fig
