"""``spinepose-deploy models``: list the zoo, fetch real weights, build stand-ins."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from .. import paths
from .._console import STANDIN_BANNER, compact_layout, err_console, out_console
from .app import models_app
from .options import JsonFlag, print_json
from .tables import zoo_table


@models_app.callback(invoke_without_command=True)
def models_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List every released graph with its role, input, contract and published size."""
    if ctx.invoked_subcommand is not None:
        return
    # lazy: the CLI starts without loading what this command needs
    from ..zoo.inventory import cache_size, inventory
    from ..zoo.specs import MODELS, MODES, SPINEPOSE_LICENSE

    local = {copy.name: copy for copy in inventory(list(MODELS.values()))}
    if as_json:
        print_json(
            {
                "models": [{**s.to_dict(), "local": local[s.name].to_dict()} for s in MODELS.values()],
                "modes": {
                    m.name: {"pose": m.pose_variant, "detectors": m.detectors, "versions": m.versions}
                    for m in MODES.values()
                },
                "cache": {"path": str(paths.cache_dir()), "size_bytes": cache_size()},
            }
        )
        return
    out_console.print(zoo_table(list(MODELS.values()), local, wide=not compact_layout()))
    modes = ", ".join(
        f"{m.name}: {m.detectors['yolox']}|{m.detectors['rfdetr']} + pose-{m.pose_variant}" for m in MODES.values()
    )
    out_console.print(f"Modes: {modes}")
    shipped = ", ".join(copy.name for copy in local.values() if copy.trained)
    out_console.print(f"Trained stand-ins ship with the package for: {shipped or 'none'} (--weights trained).")
    out_console.print(
        f"Cache: {paths.cache_dir()} ({cache_size() / 1e6:.1f} MB in all, bundles included); "
        "'models fetch NAME' downloads real weights, 'models build NAME' builds a stand-in."
    )
    out_console.print(f"SpinePose weights are {SPINEPOSE_LICENSE}; detectors carry their own licences.")


@models_app.command("build")
def models_build(
    names: Annotated[list[str], typer.Argument(help="Model names (see 'spinepose-deploy models'), or 'all'.")],
    force: Annotated[bool, typer.Option(help="Rebuild even when a cached stand-in exists.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Build architecture-faithful stand-in graphs (seeded weights) into the cache."""
    from ..zoo.specs import MODELS, get_spec  # lazy: the CLI starts without loading what this command needs

    specs = list(MODELS.values()) if names == ["all"] else [get_spec(n) for n in names]
    from ..zoo.standins import build_standin  # lazy: the CLI starts without loading what this command needs

    err_console.print(STANDIN_BANNER)
    rows = []
    for spec in specs:
        start = time.perf_counter()
        path = build_standin(spec, force=force, progress=not as_json)
        rows.append(
            {
                "name": spec.name,
                "path": str(path),
                "size_mb": round(path.stat().st_size / 1e6, 2),
                "seconds": round(time.perf_counter() - start, 2),
                "standin": True,
            }
        )
        if not as_json:
            err_console.print(f"built {spec.name}: {path} ({rows[-1]['size_mb']} MB, {rows[-1]['seconds']} s)")
    if as_json:
        print_json(rows)


@models_app.command("fetch")
def models_fetch(
    names: Annotated[list[str], typer.Argument(help="Model names to download (see 'spinepose-deploy models').")],
    repin: Annotated[
        bool, typer.Option(help="Fetch afresh and pin the new file's sha256 (after a legitimate update).")
    ] = False,
    offline: Annotated[bool, typer.Option(help="Never touch the network; fail naming the missing file.")] = False,
) -> None:
    """Download released graphs into the cache (sha256 pinned, I/O contract checked)."""
    # lazy: the CLI starts without loading what this command needs
    from ..zoo import fetch
    from ..zoo.specs import get_spec

    for name in names:
        spec = get_spec(name)
        get = fetch.repin if repin else fetch.fetch_model
        path = get(spec, offline=offline or None, progress=True)
        out_console.print(f"{spec.name}: {path}")
