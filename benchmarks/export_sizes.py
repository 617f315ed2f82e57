"""Export time and artifact size per backend x precision for one mode (default: medium), with stand-ins.

python benchmarks/export_sizes.py --mode medium --out /tmp/export-sizes
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from spinepose_deploy.export.exporter import ExportRequest, export_bundle
from spinepose_deploy.zoo.source import resolve_graph
from spinepose_deploy.zoo.specs import resolve_mode

CONFIGS = [
    ("onnxruntime", "fp32"),
    ("onnxruntime", "fp16"),
    ("openvino", "fp32"),
    ("openvino", "fp16"),
    ("coreml", "fp32"),
    ("coreml", "fp16"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="medium")
    parser.add_argument("--out", type=Path, default=Path("/tmp/export-sizes"))
    parser.add_argument("--backends", default="onnxruntime,openvino,coreml", help="comma list")
    args = parser.parse_args()
    wanted = args.backends.split(",")
    for spec in resolve_mode(args.mode).graphs().values():  # stand-ins built first, not counted below
        resolve_graph(spec, weights="standin")
    print("| backend | precision | export s | detector MB | pose MB | lifter MB | total MB |")
    print("|---|---|---|---|---|---|---|")
    for backend, precision in [c for c in CONFIGS if c[0] in wanted]:
        start = time.perf_counter()
        bundle = export_bundle(
            ExportRequest(
                backend=backend,
                precision=precision,
                mode=args.mode,
                force=True,
                out=args.out / f"{backend}-{precision}",
                weights="standin",
            )
        )
        seconds = time.perf_counter() - start
        sizes = {r: sum((bundle.path / f).stat().st_size for f in bundle.graph(r)["files"]) / 1e6 for r in bundle.roles}
        print(
            f"| {backend} | {precision} | {seconds:.0f} | {sizes['detector']:.1f} | {sizes['pose']:.1f} | "
            f"{sizes['lifter']:.1f} | {sum(sizes.values()):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
