"""Accuracy vs ground truth is defined once (synth.metrics): the export gate and synth evaluation both use it."""

from __future__ import annotations

import numpy as np

from spinepose_deploy.synth import metrics


def test_pck_hits_count_only_visible_keypoints_within_alpha_of_box_size():
    gt = np.zeros((1, 3, 2))
    pred = np.array([[[4.0, 0.0], [6.0, 0.0], [1.0, 0.0]]])  # box 100 px: alpha 0.05 is 5 px
    visible = np.array([[True, True, False]])
    boxes = np.array([[0.0, 0.0, 100.0, 50.0]])
    assert metrics.pck_hits(pred, gt, visible, boxes).tolist() == [[True, False, False]]
    assert metrics.pck(pred, gt, visible, boxes)["pck"] == 0.5


def test_person_mpjpe_is_root_relative_and_averages_to_mpjpe():
    rng = np.random.default_rng(3)
    gt = rng.normal(size=(4, 37, 3))
    shifted = gt + np.array([1.0, -2.0, 0.5])  # a translation only: root-relative error 0
    assert np.allclose(metrics.person_mpjpe(shifted, gt), 0.0)
    pred = gt + rng.normal(0, 0.01, gt.shape)
    assert np.isclose(metrics.person_mpjpe(pred, gt).mean(), metrics.mpjpe(pred, gt))


def test_mean_pose_mpjpe_is_the_error_of_answering_the_average_pose():
    gt = np.zeros((2, 37, 3))
    gt[0, 0] = [0.1, 0.0, 0.0]  # two people differing at one joint by 10 cm: each is 5 cm from the mean there
    assert np.isclose(metrics.mean_pose_mpjpe(gt), 50.0 / 37)
