"""What the device check scripts share (check_tensorrt.py, check_tensorrt_rtx.py, check_coreml.py): the relative
difference measure, one report line per check with a verdict, and the pipeline-vs-ONNX-Runtime check."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np


def relative(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> float:
    """max |candidate - reference| / output range over the outputs (inf when a shape differs)."""
    worst = 0.0
    for name, ref in reference.items():
        got = np.asarray(candidate[name]).astype(np.float32)
        if got.size == ref.size and got.shape != ref.shape:  # Core ML may drop or add unit dims
            got = got.reshape(ref.shape)
        if got.shape != ref.shape:
            return float("inf")
        worst = max(worst, float(np.abs(got - ref).max()) / (float(ref.max() - ref.min()) or 1.0))
    return worst


class Checks:
    """Runs checks, prints one PASS/FAIL line each (a failure's traceback goes to stderr) and the verdict."""

    def __init__(self) -> None:
        self.results: list[tuple[str, bool, str]] = []

    def __call__(self, title: str, body: Callable[[], str]) -> None:
        start = time.perf_counter()
        try:
            detail, ok = body(), True
        except Exception as exc:  # every failure is one line in the report
            traceback.print_exc(file=sys.stderr)
            detail, ok = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc) else ''}", False
        self.results.append((title, ok, detail))
        print(f"{'PASS' if ok else 'FAIL'} {title} ({time.perf_counter() - start:.0f} s): {detail}", flush=True)

    def verdict(self) -> int:
        """Print the verdict; exit status 0 when every check passed, else 1."""
        failed = [title for title, ok, _ in self.results if not ok]
        print(f"VERDICT: {'all checks passed' if not failed else 'FAILED: ' + '; '.join(failed)}")
        return 1 if failed else 0


def pipeline_vs_ort(bundle: Path, backend: str, **options: object) -> str:
    """``Pipeline.from_bundle`` on a packaged photo vs the ORT FP32 pipeline of small mode's stand-ins."""
    from spinepose_deploy import Pipeline
    from spinepose_deploy.export import frames

    image = frames.load_images(limit=1)[0]
    got = Pipeline.from_bundle(bundle, backend=backend, **options)(image)
    ref = Pipeline.from_zoo(mode="small", backend="onnxruntime", weights="standin")(image)
    assert len(got.boxes) == len(ref.boxes), f"{len(got.boxes)} people vs ORT {len(ref.boxes)}"
    px = float(np.abs(got.keypoints - ref.keypoints).max()) if len(ref.boxes) else 0.0
    return f"{len(got.boxes)} people, max keypoint difference {px:.1f} px (stand-in weights)"
