"""``infer --report DIR``: per input, ``<source>_summary.json`` (every track's :class:`TrackSummary`) and
``<source>.html``, a self-contained page a coach or an ergonomist can open: the not-for-clinical-use warning,
the stand-in label when the models were stand-ins, each track's zones, peaks, ROM, craniovertebral angle and
neutral reference, and the angle plot embedded as a base64 PNG (no network, no scripts).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .._atomic import write_text
from .summary import KEY_ANGLES, TrackSummary
from .table import AngleTable

OPTION = "--report"
WARNING = ("Not for clinical use. SpinePose and the stand-in graphs are research models, not medical devices: the "
           "spine points are a network's learned estimates of where the spine runs under skin and clothes, not "
           "palpated or imaged landmarks. Use these numbers for fitness, sports and ergonomics screening, never "
           "for diagnosis or treatment decisions.")  # fmt: skip
STANDIN = "STAND-IN weights: these models were not trained on people, the angles mean nothing."
_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
.warn{background:#fff3cd;border:1px solid #e0c060;padding:.8em;border-radius:4px}
.standin{background:#f8d7da;border:1px solid #d08080;padding:.8em;border-radius:4px;font-weight:bold}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%}"""


def summary_json(summaries: Sequence[TrackSummary], standin: bool) -> str:
    """The ``<source>_summary.json`` text."""
    return json.dumps({"standin": standin, "warning": WARNING, "tracks": [s.to_json() for s in summaries]},
                      indent=2) + "\n"  # fmt: skip


def _plot_png(table: AngleTable, title: str) -> bytes | None:
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # the chart extra is optional: the report then has no plot
        return None
    from .plot import draw_plot

    fig = draw_plot(table, title, OPTION)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return buffer.getvalue()


def _track_html(s: TrackSummary) -> str:
    e = html.escape
    parts = [f"<h2>track {s.track}</h2>",
             f"<p>{s.frames} frames from frame {s.first_frame} ({s.first_frame / s.fps:.2f} s), "
             f"{s.measured_frames} measured, at {s.fps:g} fps; angles {e(s.basis)}.</p>"]  # fmt: skip
    if s.vertical is not None:
        v = s.vertical
        unc = "" if v.get("vertical_uncertainty_deg") is None else f" +- {v['vertical_uncertainty_deg']:.1f}"
        parts.append(f"<p>World vertical (3D angles): {e(str(v['vertical_source']))}, camera pitch "
                     f"{v['camera_pitch_deg']:+.1f} roll {v['camera_roll_deg']:+.1f} deg{unc}.</p>")
    if s.neutral is not None:
        n = s.neutral
        if "none" in n:
            text = f"none ({e(n['none'])}, requested {e(str(n['requested']))})"
        else:
            span = f"{n['start_s']:.2f}-{n['end_s']:.2f} s"
            text = f"{e(n['rule'])}: frames {n['start_frame']}-{n['end_frame'] - 1} ({span})"
        parts.append(f"<p>Neutral reference: {text}</p>")
    for region, zone in s.zones.items():
        cells = "".join(f"<th>{e(k)} deg</th>" for k in zone["seconds"])
        values = "".join(f"<td>{v:.2f} s</td>" for v in zone["seconds"].values())
        parts.append(f"<table><tr><th>{e(region)} zone ({e(zone['angle'])})</th>{cells}</tr>"
                     f"<tr><td>time</td>{values}</tr></table>")  # fmt: skip
    rows = [(name, s.angles[name]) for name in KEY_ANGLES if name in s.angles]
    if s.cva is not None:
        rows.append(("craniovertebral angle", s.cva))
    if rows:
        body = "".join(f"<tr><td>{e(name)}</td><td>{st['min']:.1f} ({st['min_at_s']:.2f} s)</td>"
                       f"<td>{st['max']:.1f} ({st['max_at_s']:.2f} s)</td><td>{st['rom']:.1f}</td>"
                       f"<td>{st['median']:.1f}</td></tr>" for name, st in rows)  # fmt: skip
        parts.append("<table><tr><th>angle, deg</th><th>min (at)</th><th>max (at)</th><th>range of motion</th>"
                     f"<th>median</th></tr>{body}</table>")
    return "\n".join(parts)


def report_html(source: str, summaries: Sequence[TrackSummary], table: AngleTable, standin: bool) -> str:
    """The page for one input: warnings, each track's numbers, the plot (when matplotlib is installed)."""
    title = f"spine report: {source}"
    if table.relative:  # plot what the zones read: the angles relative to neutral
        values = [table.relative.get(i, row) for i, row in enumerate(table.values)]
        table = replace(table, values=values)
        plot_title = f"{title}, relative to neutral"
    else:
        plot_title = title
    png = _plot_png(table, plot_title + (" (STAND-IN)" if standin else "")) if len(table) else None
    image = (f'<img alt="spine angles over time" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
             if png else "<p>(no plot: install the chart extra, pip install 'spinepose-deploy[chart]')</p>")
    body = "\n".join(_track_html(s) for s in summaries) or "<p>No tracked person in this input.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body><h1>{html.escape(title)}</h1>
<p class="warn">{html.escape(WARNING)}</p>
{f'<p class="standin">{html.escape(STANDIN)}</p>' if standin else ''}
<p>Zones: trunk 0-20 / 20-60 / &gt;60 deg, neck 0-10 / 10-20 / &gt;20 deg of flexion (ISO 11226, RULA), extension
apart. Craniovertebral angle: C7 to ear above the horizontal (smaller: head further forward).</p>
{body}
{image}
</body></html>
"""


def write_report(folder: Path, source: str, summaries: Sequence[TrackSummary], table: AngleTable,
                 standin: bool) -> list[Path]:
    """``<source>_summary.json`` and ``<source>.html`` in ``folder``."""
    return [write_text(folder / f"{source}_summary.json", summary_json(summaries, standin)),
            write_text(folder / f"{source}.html", report_html(source, summaries, table, standin))]  # fmt: skip
