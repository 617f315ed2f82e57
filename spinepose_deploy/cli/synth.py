"""``spinepose-deploy synth``: synthetic scenes or a motion clip with ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._console import out_console
from ..errors import check_choice
from .app import app


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder for scene_SEED.png + scene_SEED.json (ground truth).")],
    count: Annotated[int, typer.Option(min=1, help="How many scenes.")] = 4,
    seed: Annotated[int, typer.Option(help="First seed (from 1000000: the held-out evaluation set).")] = 1_000_000,
    motion: Annotated[
        str | None, typer.Option(help="Instead: a video of one figure: walk | bend | side_bend | twist.")
    ] = None,
    frames: Annotated[int, typer.Option(min=2, help="Frames of the --motion clip (24 fps).")] = 48,
    camera: Annotated[
        str, typer.Option(help="The --motion clip's camera: level | high | rolled | low | oblique (docs/spine.md).")
    ] = "level",
) -> None:
    """Render synthetic scenes with ground truth (boxes, 2D/3D keypoints, intrinsics) to try 'infer --weights trained'.

    The figures come from spinepose_deploy.synth, the world the packaged trained stand-ins learned on.
    """
    from ..synth.files import write_clip, write_scenes  # lazy: the CLI starts without loading what this command needs

    if motion is not None:
        from ..synth.motion import CAMERAS, MOTIONS, make_clip  # lazy, as above

        clip = make_clip(check_choice("--motion", motion, MOTIONS), frames,
                         camera=check_choice("--camera", camera, tuple(CAMERAS)))  # fmt: skip
        video = write_clip(out, clip)
        out_console.print(f"wrote {video} (+ ground-truth JSON); try: spinepose-deploy infer {video} --weights trained "
                          f"--lift --spine angles.csv --spine-plot angles.png --trc trc/", soft_wrap=True)
        return

    paths = write_scenes(out, range(seed, seed + count))
    out_console.print(f"wrote {len(paths)} scenes to {out} (PNG + ground-truth JSON); try: spinepose-deploy infer "
                      f"{paths[0]} --weights trained --lift --vis overlay.jpg", soft_wrap=True)
