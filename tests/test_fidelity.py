"""Pose fidelity metrics: far moves between near-equal reference peaks are ties, not errors."""

from __future__ import annotations

import numpy as np

from spinepose_deploy.export.fidelity import Thresholds, check, pose_metrics


def _rows(n: int, bins: int, seed: int, peaked: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.normal(0.0, 0.3, (n, 37, bins)).astype(np.float32)
    if peaked:  # a trained graph: one clear peak per row
        rows[..., bins // 3] += 5.0
    return rows


def test_far_flip_onto_a_near_tie_is_set_aside():
    ref_x, ref_y = _rows(4, 384, 0, peaked=False), _rows(4, 512, 1, peaked=False)
    ref_x[:, 0, 10] = 2.0  # the reference's peak ...
    ref_x[:, 0, 300] = 1.999  # ... and a second one 145 px away, 0.03 % of the row's range lower
    got_x = ref_x.copy()
    got_x[:, 0, 300] = 2.001  # rounding swaps them
    metrics = pose_metrics({"simcc_x": ref_x, "simcc_y": ref_y}, {"simcc_x": got_x, "simcc_y": ref_y})
    assert metrics["tie_share"] == 4 / (4 * 37) and metrics["kpt_px_p95"] == 0.0
    assert check("pose", metrics) == []


def test_far_flip_away_from_a_clear_peak_fails_the_gate():
    ref_x, ref_y = _rows(4, 384, 0, peaked=True), _rows(4, 512, 1, peaked=True)
    got_x = ref_x.copy()
    got_x[:, :3, 300] = ref_x[:, :3].max(-1) + 1.0  # 3 of 37 keypoints jump 30+ px off a decisive peak
    metrics = pose_metrics({"simcc_x": ref_x, "simcc_y": ref_y}, {"simcc_x": got_x, "simcc_y": ref_y})
    assert metrics["tie_share"] == 0.0 and metrics["kpt_px_p95"] > 6.0
    assert any("p95" in failure for failure in check("pose", metrics))


def test_a_reference_too_flat_to_judge_fails_on_tie_share():
    metrics = {"argmax_agreement": 0.5, "kpt_px_median": 0.0, "kpt_px_p95": 0.0, "tie_share": 0.5}
    assert check("pose", metrics, Thresholds()) == ["near-tie share 0.500 > 0.2"]
