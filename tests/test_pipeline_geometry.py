"""Pure pre/post-processing of the pipeline: detector, pose crops, lifting, world frame, tracking.

Tests that compare with upstream SpinePose 2.1.0 run when ``spinepose`` is importable, or when a source
checkout is found at ``$SPINEPOSE_UPSTREAM_DIR`` (default ``/work/ref``); otherwise they skip.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from spinepose_deploy.errors import UserError
from spinepose_deploy.ops import detector, lifter, pose, skeleton, tracking, world

RNG = np.random.default_rng(0)


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def upstream():
    """The upstream ``spinepose`` package, installed or from a source checkout; skip when absent."""
    try:
        import spinepose
    except ImportError:
        ref = Path(os.environ.get("SPINEPOSE_UPSTREAM_DIR", "/work/ref"))
        if not (ref / "spinepose" / "__init__.py").is_file():
            pytest.skip("upstream spinepose is not installed and no checkout at $SPINEPOSE_UPSTREAM_DIR")
        sys.path.insert(0, str(ref))
        try:
            import spinepose
        except ImportError as exc:
            pytest.skip(f"upstream spinepose checkout not importable: {exc}")
        finally:
            sys.path.remove(str(ref))
    return spinepose


def _bare(cls, **attrs):
    """An upstream tool object without running its __init__ (which opens an ONNX session)."""
    obj = object.__new__(cls)
    for key, value in attrs.items():
        setattr(obj, key, value)
    return obj


def standing_pose() -> np.ndarray:
    """(37, 3) metres, world frame with y up, a person standing at the origin facing +z (the camera)."""
    p = {
        "hip": (0, 1.0, 0), "left_hip": (0.1, 1.0, 0), "right_hip": (-0.1, 1.0, 0),
        "left_knee": (0.1, 0.55, 0), "right_knee": (-0.1, 0.55, 0),
        "left_ankle": (0.1, 0.1, 0), "right_ankle": (-0.1, 0.1, 0),
        "left_heel": (0.1, 0.02, -0.05), "right_heel": (-0.1, 0.02, -0.05),
        "left_big_toe": (0.12, 0.02, 0.15), "right_big_toe": (-0.12, 0.02, 0.15),
        "left_small_toe": (0.17, 0.02, 0.12), "right_small_toe": (-0.17, 0.02, 0.12),
        "spine_01": (0, 1.1, -0.05), "spine_02": (0, 1.2, -0.05), "spine_03": (0, 1.3, -0.05),
        "spine_04": (0, 1.4, -0.05), "spine_05": (0, 1.5, -0.05),
        "neck": (0, 1.55, 0), "neck_02": (0, 1.6, 0), "neck_03": (0, 1.65, 0), "head": (0, 1.8, 0),
        "nose": (0, 1.7, 0.1), "left_eye": (0.03, 1.72, 0.08), "right_eye": (-0.03, 1.72, 0.08),
        "left_ear": (0.07, 1.7, 0), "right_ear": (-0.07, 1.7, 0),
        "left_shoulder": (0.18, 1.5, 0), "right_shoulder": (-0.18, 1.5, 0),
        "left_elbow": (0.2, 1.2, 0), "right_elbow": (-0.2, 1.2, 0),
        "left_wrist": (0.2, 0.95, 0), "right_wrist": (-0.2, 0.95, 0),
        "left_latissimus": (0.12, 1.3, -0.05), "right_latissimus": (-0.12, 1.3, -0.05),
        "left_clavicle": (0.1, 1.52, 0.02), "right_clavicle": (-0.1, 1.52, 0.02),
    }  # fmt: skip
    return np.array([p[name] for name in skeleton.KEYPOINT_NAMES], dtype=np.float64)


def world_to_camera(points: np.ndarray, pitch_deg: float = 10.0, position=(0.3, 1.3, 4.0)) -> np.ndarray:
    """World (y up, z towards the camera) -> camera (x right, y down, z forward), pitched by ``pitch_deg``."""
    t = np.deg2rad(pitch_deg)
    pitch = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    rot = pitch @ np.diag([1.0, -1.0, -1.0])  # a proper rotation: det +1
    return (points - np.asarray(position)) @ rot.T


def project(points_cam: np.ndarray, k: np.ndarray) -> np.ndarray:
    uvw = points_cam @ np.asarray(k, dtype=np.float64).T
    return uvw[..., :2] / uvw[..., 2:3]


# ---------------------------------------------------------------- skeleton


def test_skeleton_constants():
    assert len(skeleton.KEYPOINT_NAMES) == skeleton.NUM_KEYPOINTS == 37
    assert len(skeleton.LINKS) == len(skeleton.LINK_COLORS_BGR) == 39
    assert skeleton.SPINE_IDS == (19, 26, 27, 28, 29, 30, 18, 35, 36)
    assert skeleton.ROOT_ID == 19 and skeleton.KEYPOINT_NAMES[19] == "hip"
    for a, b in skeleton.FLIP_PAIRS:
        left, right = skeleton.KEYPOINT_NAMES[a], skeleton.KEYPOINT_NAMES[b]
        assert left.replace("left_", "") == right.replace("right_", "")
    assert len(skeleton.FLIP_PAIRS) == 13
    assert skeleton.OKS_SIGMAS.shape == (37,)
    # the 9 spine-chain links (head..hip) are marked for emphasis
    assert len(skeleton.SPINE_LINKS) == 9
    # upstream drew with line width 0 below 400 px and crashed
    assert skeleton.overlay_sizes(320) == (1, 1)
    assert skeleton.overlay_sizes(1600) == (8, 4)


def test_skeleton_matches_upstream(upstream):
    from spinepose.metainfo import metainfo

    names = [v["name"] for v in metainfo["keypoint_info"].values()]
    assert tuple(names) == skeleton.KEYPOINT_NAMES
    links = [(names.index(v["link"][0]), names.index(v["link"][1])) for v in metainfo["skeleton_info"].values()]
    assert links == list(skeleton.LINKS)
    assert [tuple(v["color"][::-1]) for v in metainfo["skeleton_info"].values()] == list(skeleton.LINK_COLORS_BGR)
    kp_colors = [tuple(v["color"][::-1]) for v in metainfo["keypoint_info"].values()]
    assert kp_colors == list(skeleton.KEYPOINT_COLORS_BGR)
    np.testing.assert_allclose(skeleton.OKS_SIGMAS, metainfo["sigmas"], rtol=1e-6)


# ---------------------------------------------------------------- detector


def test_letterbox_ratio_and_offset():
    image = RNG.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    canvas, ratio = detector.letterbox(image, (416, 416))
    assert ratio == pytest.approx(0.65)
    assert canvas.shape == (416, 416, 3) and canvas.dtype == np.uint8
    # resized to int(640*0.65)=416 x int(480*0.65)=312, pasted top-left; grey below
    assert (canvas[312:] == 114).all()
    np.testing.assert_array_equal(canvas[:312], cv2.resize(image, (416, 312), interpolation=cv2.INTER_LINEAR))
    # a tall odd-sized image: int() truncation on both sides, grey right of it
    tall = np.zeros((1000, 333, 3), np.uint8)
    canvas, ratio = detector.letterbox(tall, (640, 640))
    assert ratio == pytest.approx(0.64)
    assert (canvas[:, : int(333 * 0.64)] == 0).all() and (canvas[:, int(333 * 0.64) :] == 114).all()
    feed, ratio2 = detector.yolox_feed(image, (416, 416), "input")
    assert list(feed) == ["input"] and feed["input"].shape == (1, 3, 416, 416) and feed["input"].dtype == np.float32
    assert ratio2 == pytest.approx(0.65)
    # raw 0-255 in BGR order (YOLOX is trained on BGR)
    np.testing.assert_array_equal(feed["input"][0].transpose(1, 2, 0), detector.letterbox(image, (416, 416))[0])


def test_letterbox_extreme_aspect_does_not_crash():
    canvas, ratio = detector.letterbox(np.zeros((1, 5000, 3), np.uint8), (416, 416))
    assert canvas.shape == (416, 416, 3) and ratio == pytest.approx(416 / 5000)


def test_check_image_rejects_wrong_input():
    with pytest.raises(UserError, match=r"expected \(H, W, 3\) uint8"):
        detector.yolox_feed(np.zeros((10, 10), np.uint8), (64, 64))
    with pytest.raises(UserError, match="float32"):
        detector.yolox_feed(np.zeros((10, 10, 3), np.float32), (64, 64))


def test_decode_yolox_constructed():
    dets = np.array(
        [[[10, 20, 110, 220, 0.9], [0, 0, 50, 50, 0.25], [30, 40, 20, 60, 0.5], [5, 5, 5, 5, 0.8]]],
        np.float32,
    )
    boxes, scores = detector.decode_yolox(dets, ratio=0.5)
    # low score dropped, inverted box reordered, zero-size box dropped
    np.testing.assert_allclose(boxes, [[20, 40, 220, 440], [40, 80, 60, 120]])
    np.testing.assert_allclose(scores, [0.9, 0.5])
    empty_boxes, empty_scores = detector.decode_yolox(np.zeros((1, 0, 5), np.float32), 1.0)
    assert empty_boxes.shape == (0, 4) and empty_scores.shape == (0,)


def test_nms():
    boxes = np.array([[0, 0, 100, 100], [5, 5, 105, 105], [200, 200, 300, 300], [0, 0, 100, 100]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    keep = detector.nms(boxes, scores, 0.5)
    assert keep.tolist() == [3, 2]  # 3 beats its duplicate 0 and the shifted 1
    assert detector.nms(boxes, scores, 0.99).tolist() == [3, 1, 2]  # IoU(3,0)=1 > 0.99; (3,1)~0.82 kept
    assert detector.nms(boxes[:0], scores[:0], 0.5).tolist() == []
    # offset 0 (ONNX convention) vs 1 (upstream): touching 1-px boxes overlap only with offset 1
    pair = np.array([[0, 0, 1, 1], [1, 0, 2, 1]], np.float32)
    assert detector.nms(pair, np.array([0.9, 0.8]), 0.2, offset=0.0).tolist() == [0, 1]
    assert detector.nms(pair, np.array([0.9, 0.8]), 0.2, offset=1.0).tolist() == [0]


def test_yolox_raw_output_host_nms():
    a = 8 * 8 + 4 * 4 + 2 * 2
    raw = np.zeros((1, a, 6), np.float32)
    raw[0, 9] = [0.5, 0.5, np.log(2), np.log(4), 0.9, 1.0]  # stride-8 cell (1, 1)
    raw[0, 10] = [0.0, 0.5, np.log(2), np.log(4), 0.8, 1.0]  # cell (2, 1), overlaps the first
    raw[0, 64] = [0.5, 0.5, np.log(1), np.log(1), 0.95, 0.5]  # score 0.475 < 0.7 candidate threshold
    boxes, scores = detector.yolox_grid_decode(raw, (64, 64))
    assert boxes.shape == (a, 4) and scores.shape == (a, 1)
    np.testing.assert_allclose(boxes[9], [4, -4, 20, 28], atol=1e-5)
    out_boxes, out_scores = detector.decode_boxes_scores(boxes, scores, ratio=0.5)
    np.testing.assert_allclose(out_boxes, [[8, -8, 40, 56]], atol=1e-4)
    np.testing.assert_allclose(out_scores, [0.9])
    with pytest.raises(UserError, match="anchors"):
        detector.yolox_grid_decode(raw, (128, 128))


def test_rfdetr_feed_colour_and_normalisation():
    image = np.zeros((48, 64, 3), np.uint8)
    image[..., 0] = 255  # pure blue in BGR
    feed, size = detector.rfdetr_feed(image, (32, 32), "images")
    assert size == (48, 64) and feed["images"].shape == (1, 3, 32, 32)
    mean = np.array(detector.IMAGENET_MEAN) / 255
    std = np.array(detector.IMAGENET_STD) / 255
    np.testing.assert_allclose(feed["images"][0, :, 0, 0], (np.array([0, 0, 1.0]) - mean) / std, rtol=1e-5)
    compat, _ = detector.rfdetr_feed(image, (32, 32), "images", seed_compat=True)  # upstream fed BGR
    np.testing.assert_allclose(compat["images"][0, :, 0, 0], (np.array([1.0, 0, 0]) - mean) / std, rtol=1e-5)


def test_decode_rfdetr_constructed():
    q, c = 300, 91
    logits = np.full((1, q, c), -10.0, np.float32)
    dets = np.tile(np.array([0.5, 0.5, 0.1, 0.1], np.float32), (1, q, 1))
    logits[0, 3, 1] = 2.0  # person, p=0.88
    dets[0, 3] = [0.5, 0.5, 0.2, 0.4]
    logits[0, 5, 3] = 5.0  # another class
    logits[0, 7, 0] = 10.0  # background column: never a detection
    logits[0, 9, 1] = -0.5  # person, p=0.378
    dets[0, 9] = [0.1, 0.1, -0.2, 0.1]  # negative width: clipped to 0, kept (height is not 0)
    logits[0, 11, 1] = -1.0  # person, p=0.269 < 0.3
    boxes, scores = detector.decode_rfdetr(dets, logits, (480, 640))
    np.testing.assert_allclose(boxes, [[256, 144, 384, 336], [64, 24, 64, 72]], atol=1e-3)
    np.testing.assert_allclose(scores, 1 / (1 + np.exp([-2.0, 0.5])), rtol=1e-6)
    all_boxes, all_scores = detector.decode_rfdetr(dets, logits, (480, 640), class_ids=None)
    assert len(all_scores) == 3 and all_scores[0] == pytest.approx(1 / (1 + np.exp(-5.0)))


def test_sanitize_boxes():
    boxes = np.array([[10, 10, 0, 0], [0, 0, 0, 50], [3, 3, 3.5, 3.5], [np.nan, 0, 1, 1], [0, 0, np.inf, 1]])
    fixed, keep = detector.sanitize_boxes(boxes)
    assert keep.tolist() == [True, True, False, False, False]
    np.testing.assert_array_equal(fixed, [[0, 0, 10, 10], [0, 0, 0, 50]])


# ---------------------------------------------------------------- pose crops


BOXES = np.array(
    [
        [100, 50, 300, 450],  # person-like
        [10, 200, 630, 230],  # very wide
        [300, 0, 304, 479],  # very tall and thin
        [600, 400, 700, 560],  # partly outside the image
        [320, 240, 321, 241],  # 1 px
        [-50, -80, 40, 20],  # negative corner
    ],
    np.float32,
)


@pytest.mark.parametrize("input_hw", [(256, 192), (384, 288)])
def test_crop_round_trip(input_hw):
    image = RNG.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    batch, centers, scales = pose.crop_batch(image, BOXES, input_hw)
    assert batch.shape == (len(BOXES), 3, *input_hw) and batch.dtype == np.float32
    # aspect fixed to the network's w/h, and never smaller than the padded box
    np.testing.assert_allclose(scales[:, 0] / scales[:, 1], input_hw[1] / input_hw[0], rtol=1e-5)
    assert (scales >= (BOXES[:, 2:] - BOXES[:, :2]) * 1.25 - 1e-3).all()
    for i, box in enumerate(BOXES):
        pts = RNG.uniform(box[:2], box[2:], size=(20, 2))
        warp = pose.get_warp_matrix(centers[i], scales[i], (input_hw[1], input_hw[0]))
        in_crop = cv2.transform(pts[None].astype(np.float64), warp)[0]
        back = pose.crop_to_image(in_crop[None], centers[i : i + 1], scales[i : i + 1], input_hw)[0]
        assert np.abs(back - pts).max() < 0.5, (i, np.abs(back - pts).max())
        np.testing.assert_allclose(
            pose.image_to_crop(pts[None], centers[i : i + 1], scales[i : i + 1], input_hw)[0],
            in_crop,
            atol=0.05,
        )
        inv = pose.get_warp_matrix(centers[i], scales[i], (input_hw[1], input_hw[0]), inv=True)
        np.testing.assert_allclose(cv2.transform(in_crop[None], inv)[0], pts, atol=0.05)


def test_crop_pixels_land_where_keypoints_map_back():
    """A bright blob in the image, found in the crop, maps back onto itself (warp and inverse agree)."""
    image = np.zeros((480, 640, 3), np.uint8)
    target = np.array([210.0, 170.0])
    image[168:173, 208:213] = 255
    boxes = np.array([[150, 100, 300, 400], [100, 150, 400, 200]], np.float32)
    batch, centers, scales = pose.crop_batch(image, boxes, (256, 192), mean=(0, 0, 0), std=(1, 1, 1))
    for i in range(len(boxes)):
        heat = batch[i, 0].astype(np.float64)
        ys, xs = np.mgrid[: heat.shape[0], : heat.shape[1]]
        centroid = np.array([(heat * xs).sum(), (heat * ys).sum()]) / heat.sum()
        back = pose.crop_to_image(centroid[None, None], centers[i : i + 1], scales[i : i + 1], (256, 192))[0, 0]
        assert np.abs(back - target).max() < 0.5, back


def test_crop_batch_colour_and_bad_boxes():
    image = np.zeros((100, 100, 3), np.uint8)
    image[..., 2] = 200  # red in BGR
    box = np.array([[10, 10, 90, 90]], np.float32)
    rgb, _, _ = pose.crop_batch(image, box, (64, 48), mean=(0, 0, 0), std=(1, 1, 1))
    bgr, _, _ = pose.crop_batch(image, box, (64, 48), mean=(0, 0, 0), std=(1, 1, 1), seed_compat=True)
    assert rgb[0, 0, 32, 24] == 200 and rgb[0, 2, 32, 24] == 0
    assert bgr[0, 2, 32, 24] == 200 and bgr[0, 0, 32, 24] == 0
    # inverted corners give the same crop as ordered ones
    flipped, c1, s1 = pose.crop_batch(image, box[:, [2, 3, 0, 1]], (64, 48))
    ordered, c2, s2 = pose.crop_batch(image, box, (64, 48))
    np.testing.assert_array_equal(flipped, ordered)
    # no boxes: an empty batch
    empty, centers, scales = pose.crop_batch(image, np.zeros((0, 4)), (64, 48))
    assert empty.shape == (0, 3, 64, 48) and centers.shape == (0, 2)
    for bad in ([5, 5, 5, 5], [0, 0, np.nan, 10]):
        with pytest.raises(UserError, match="empty or not finite"):
            pose.crop_batch(image, np.array([bad], np.float32), (64, 48))


def test_decode_simcc_exact_locations():
    n, k, w, h = 3, 37, 192, 256
    sx = np.zeros((n, k, 2 * w), np.float32)
    sy = np.zeros((n, k, 2 * h), np.float32)
    ix = RNG.integers(0, 2 * w, (n, k))
    iy = RNG.integers(0, 2 * h, (n, k))
    np.put_along_axis(sx, ix[..., None], 0.8, axis=2)
    np.put_along_axis(sy, iy[..., None], 0.6, axis=2)
    sx[1, 4] = -1.0  # no positive response: upstream marks it -1 (then / 2)
    sy[1, 4] = -1.0
    keypoints, scores = pose.decode_simcc(sx, sy)
    expected = np.stack([ix, iy], -1) / 2.0
    expected[1, 4] = -0.5
    np.testing.assert_array_equal(keypoints, expected.astype(np.float32))
    assert scores[0, 0] == pytest.approx(0.7) and scores[1, 4] == pytest.approx(-1.0)
    assert keypoints.shape == (n, k, 2) and scores.shape == (n, k)


def test_empty_frame_flows_through():
    kp, sc = pose.decode_simcc(np.zeros((0, 37, 384), np.float16), np.zeros((0, 37, 512), np.float16))
    assert kp.shape == (0, 37, 2) and sc.shape == (0, 37) and sc.dtype == np.float32
    kp = pose.crop_to_image(kp, np.zeros((0, 2)), np.zeros((0, 2)), (256, 192))
    assert pose.smooth_spine_v1(kp, sc)[0].shape == (0, 37, 2)
    xy, vis = lifter.lifter_feed(kp, sc, lifter.estimate_intrinsics(64, 48))
    assert xy.shape == (0, 37, 2) and vis.shape == (0, 37)
    assert tracking.IouTracker().update(tracking.pose_to_bbox(kp)).shape == (0,)
    assert tracking.KeypointSmoother()(kp, np.zeros(0, np.int64)).shape == (0, 37, 2)


def test_validate_simcc():
    sx, sy = np.zeros((2, 37, 384)), np.zeros((2, 37, 512))
    got = pose.validate_simcc({"simcc_x": sx, "simcc_y": sy}, 2, 37)
    assert got[0] is sx and got[1] is sy
    assert pose.validate_simcc({"a": sx, "b": sy}, 2, 37)[1] is sy  # by position when names differ
    with pytest.raises(UserError, match="expected simcc_x and simcc_y"):
        pose.validate_simcc({"a": sx}, 2, 37)
    with pytest.raises(UserError, match=r"expected \(3, 37, L\)"):
        pose.validate_simcc({"simcc_x": sx, "simcc_y": sy}, 3, 37)


def test_smooth_spine_v1_is_sequential():
    kp = np.zeros((1, 37, 2), np.float32)
    kp[0, list(skeleton.SPINE_IDS), 0] = np.arange(9) ** 2
    out, _ = pose.smooth_spine_v1(kp, np.ones((1, 37)))
    x = (np.arange(9) ** 2).astype(np.float64)
    for i in range(1, 8):
        x[i] = (x[i - 1] + x[i + 1]) / 2
    np.testing.assert_allclose(out[0, list(skeleton.SPINE_IDS), 0], x)
    assert kp[0, 26, 0] == 1.0  # input untouched


# ---------------------------------------------------------------- lifting


def test_intrinsics_from_fov():
    k = lifter.estimate_intrinsics(640, 480)
    assert k.shape == (3, 3) and k.dtype == np.float32
    assert (k[0, 2], k[1, 2]) == (320, 240) and k[0, 0] == k[1, 1]
    # the image corner lies at half the diagonal FOV
    assert np.degrees(np.arctan(400 / k[0, 0])) == pytest.approx(42.0, abs=1e-4)
    kh = lifter.estimate_intrinsics(640, 480, hfov=60)
    assert np.degrees(np.arctan(320 / kh[0, 0])) == pytest.approx(30.0, abs=1e-4) and kh[1, 1] == kh[0, 0]
    kb = lifter.estimate_intrinsics(640, 480, hfov=60, vfov=60)
    assert kb[1, 1] == pytest.approx(240 / np.tan(np.radians(30)), rel=1e-6)
    with pytest.raises(UserError, match="dfov"):
        lifter.estimate_intrinsics(640, 480, dfov=0)


def test_lifter_feed_normalises_and_masks():
    k = lifter.estimate_intrinsics(640, 480)
    kp = np.array([[[320, 240], [320 + k[0, 0], 240 - k[1, 1]], [0, 0]]], np.float32)
    xy, visible = lifter.lifter_feed(kp, np.array([[0.9, 0.5, 0.49]]), k)
    np.testing.assert_allclose(xy, [[[0, 0], [1, -1], [0, 0]]], atol=1e-6)
    assert visible.tolist() == [[True, True, False]] and xy.dtype == np.float32


def test_metric_scale():
    p = np.zeros((37, 3), np.float32)
    idx = skeleton.KEYPOINT_INDEX
    p[idx["neck"]] = (0, -0.5, 0)
    p[idx["head"]] = (0, -0.8, 0)
    for side in ("left", "right"):
        p[idx[f"{side}_knee"]] = (0, 0.4, 0)
        p[idx[f"{side}_ankle"]] = (0, 0.8, 0)
        p[idx[f"{side}_heel"]] = (0, 0.9, 0)
    assert lifter.estimate_metric_scale(p) == pytest.approx(1.84 / 1.7)
    assert lifter.estimate_metric_scale(p * 2, subject_height=1.7) == pytest.approx(0.5)
    assert lifter.estimate_metric_scale(np.zeros((37, 3))) == 1.0


def test_root_translation_recovers_known_translation():
    k = lifter.estimate_intrinsics(1280, 720)
    cam = world_to_camera(standing_pose())
    root = cam[19]
    pixels = project(cam, k)
    scores = np.full((1, 37), 0.9)
    scores[0, :5] = 0.1  # the face is not visible: still enough points
    xy, visible = lifter.lifter_feed(pixels[None], scores, k)
    t = lifter.estimate_root_translation(cam - root, xy[0], visible[0])
    np.testing.assert_allclose(t, root, atol=2e-3)
    # the whole post-processing: any offset in the raw output is removed, scale applied, root restored
    raw = ((cam - root) / 0.5 + np.array([0.3, -2.0, 7.0]))[None].astype(np.float32)
    out = lifter.lift_postprocess(raw, xy, visible, scale=0.5)
    assert out.shape == (1, 37, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], cam, atol=3e-3)
    # fewer than 3 visible joints, or a subject behind the camera: upstream's fallback
    few = np.zeros(37, bool)
    few[:2] = True
    np.testing.assert_array_equal(lifter.estimate_root_translation(cam - root, xy[0], few), [0, 0, 3])
    behind = cam - root + np.array([0, 0, -8.0])
    np.testing.assert_array_equal(
        lifter.estimate_root_translation(
            cam - root, lifter.lifter_feed(project(behind, k)[None], scores, k)[0][0], visible[0]
        )[2],
        3.0,
    )
    assert lifter.lift_postprocess(np.zeros((0, 37, 3)), np.zeros((0, 37, 2)), np.zeros((0, 37), bool), 1.0).shape == (
        0,
        37,
        3,
    )


# ---------------------------------------------------------------- world frame


def test_world_transform_recovers_up_and_ground():
    pose_world = standing_pose()
    cam = world_to_camera(pose_world, pitch_deg=15.0)
    scores = np.full((1, 37), 0.9, np.float32)
    wt = world.WorldTransform(lifter.estimate_intrinsics(1280, 720), warmup_frames=5)
    np.testing.assert_array_equal(wt.step(np.zeros((0, 37, 3)), scores[:0]), np.zeros((0, 37, 3)))
    for _ in range(5):
        out = wt.step(cam[None], scores)[0]
    assert wt.frozen and wt.frames == 5
    rel = out - out[19]
    # flat feet: the foot plane agrees with the body, so the world axes come back exactly
    np.testing.assert_allclose(rel, pose_world - pose_world[19], atol=0.01)
    assert abs(out[19, 0]) < 1e-4 and abs(out[19, 2]) < 1e-4  # origin below the hip
    assert 0.0 <= out[skeleton.KEYPOINT_INDEX["left_heel"], 1] < 0.08  # feet on the ground
    # frozen: a different pose no longer moves the frame
    before = wt.camera_to_world.copy()
    wt.step((cam + 1.0)[None], scores)
    np.testing.assert_array_equal(wt.camera_to_world, before)
    # reprojection with the world->pixel matrix lands on the camera projection
    k = wt.intrinsics
    np.testing.assert_allclose(world.world_to_image(out, wt.world_to_pixels), project(cam, k), atol=0.05)


def test_world_transform_options():
    cam = world_to_camera(standing_pose())
    scores = np.full((1, 37), 0.9, np.float32)
    keep = world.WorldTransform(keep_camera_orientation=True)
    np.testing.assert_allclose(keep.step(cam[None], scores)[0], cam, atol=1e-6)
    flat = world.WorldTransform(ground_plane=False)
    flat.step(np.zeros((0, 37, 3)), scores[:0])  # an empty first frame must not block initialisation
    out = flat.step(cam[None], scores)[0]
    np.testing.assert_allclose(flat.camera_to_world[:3, :3], np.diag([1, -1, 1]), atol=1e-6)
    assert out[17, 1] > out[19, 1]  # head above hip after the y flip
    degenerate = world.WorldTransform()
    degenerate.step(np.full((1, 37, 3), np.nan), scores)  # no usable direction: skipped, not raised
    assert degenerate.frames == 0 and np.isfinite(degenerate.camera_to_world).all()
    degenerate.step(np.zeros((1, 37, 3)), scores)  # all points equal: upstream's fallback up axis (-y)
    assert degenerate.frames == 1


def test_world_matches_upstream(upstream):
    from spinepose.pose_tracker import PoseTracker

    k = lifter.estimate_intrinsics(1280, 720)
    for ground in (True, False):
        ref = _bare(
            PoseTracker,
            estimate_camera_pose=True,
            estimate_ground_plane=ground,
            warmup_frames=4,
            solution=SimpleNamespace(camera_intrinsics=k),
        )
        ref.reset()
        mine = world.WorldTransform(k, ground_plane=ground, warmup_frames=4)
        rng = np.random.default_rng(1)
        for frame in range(7):
            cam = world_to_camera(standing_pose() + rng.normal(0, 0.02, (37, 3)), pitch_deg=5 + frame).astype(
                np.float32
            )
            scores = rng.uniform(0.2, 1.0, 37).astype(np.float32)
            ref._update_camera_pose(cam, scores)
            mine.update(cam, scores)
            np.testing.assert_allclose(mine.camera_to_world, ref._camera_to_world, atol=2e-5)
            np.testing.assert_allclose(mine.world_to_pixels, ref._world_to_pixels, rtol=1e-5, atol=1e-2)


# ---------------------------------------------------------------- tracking and smoothing


def test_tracker_ids():
    tr = tracking.IouTracker()
    a, b, c = [0, 0, 100, 100], [200, 0, 300, 100], [500, 500, 600, 600]
    assert tr.update(np.array([a, b])).tolist() == [0, 1]
    shift = np.array([5, 5, 5, 5])
    assert tr.update(np.array([b, a]) + shift).tolist() == [1, 0]  # continuity, order-independent
    assert tr.update(np.array([a, b, c]) + shift).tolist() == [0, 1, 2]  # new box, new id
    assert tr.update(np.array([[0, 0, 10, 10]])).tolist() == [-1]  # too small to track
    assert tr.update(np.zeros((0, 4))).tolist() == []
    assert tr.update(np.array([a])).tolist() == [3]  # ids are never reused
    np.testing.assert_array_equal(tr.boxes, [a])


def test_tracker_max_age_and_duplicates():
    tr = tracking.IouTracker(max_age=2)
    a = np.array([[0, 0, 100, 100]])
    assert tr.update(a).tolist() == [0]
    tr.update(np.zeros((0, 4)))
    tr.update(np.zeros((0, 4)))
    assert tr.update(a).tolist() == [0]  # back within max_age
    # two poses on one previous box: only the first gets its id
    assert tr.update(np.concatenate([a, a + 1])).tolist() == [0, 1]
    for _ in range(3):
        tr.update(np.zeros((0, 4)))
    assert tr.update(a).tolist() == [2] and tr.track_ids == [2]  # expired tracks are forgotten


def test_pose_to_bbox():
    kp = np.array([[[10, 20], [30, 60], [20, 40]]], np.float32)
    np.testing.assert_allclose(tracking.pose_to_bbox(kp), [[7.5, 15, 32.5, 65]])
    assert tracking.pose_to_bbox(np.zeros((0, 37, 2))).shape == (0, 4)


def test_one_euro_reduces_jitter():
    rng = np.random.default_rng(3)
    noisy = 5.0 + rng.normal(0, 1.0, (300, 37, 2))
    smoother = tracking.KeypointSmoother()
    out = np.stack([smoother(frame[None], [0])[0] for frame in noisy])
    assert out[0] == pytest.approx(noisy[0])  # first frame passes through
    assert out[30:].std() < 0.5 * noisy[30:].std()
    assert abs(out[30:].mean() - 5.0) < 0.1


def test_smoother_state_follows_tracks():
    smoother = tracking.KeypointSmoother()
    kp = np.ones((2, 37, 2), np.float32)
    smoother(kp, [4, -1])
    assert set(smoother.filters) == {4}
    out = smoother(kp * 3, [-1, 7])
    np.testing.assert_array_equal(out[0], kp[0] * 3)  # untracked row passes through
    assert set(smoother.filters) == {7}  # track 4 vanished: its state is gone
    with pytest.raises(ValueError, match="track ids"):
        smoother(kp, [1])


def test_one_euro_equals_package():
    package = pytest.importorskip("OneEuroFilter")
    rng = np.random.default_rng(4)
    params = dict(freq=30.0, mincutoff=0.1, beta=0.1, dcutoff=1.0)
    signal = np.cumsum(rng.normal(0, 1, (60, 3, 2)), axis=0)
    times = [None] * 20 + [1.0 + i / 25 for i in range(40)]
    scalar = [[package.OneEuroFilter(**params) for _ in range(2)] for _ in range(3)]
    vector = tracking.OneEuro(**params)
    for x, t in zip(signal, times, strict=True):
        expected = np.array([[scalar[i][j](x[i, j], t) for j in range(2)] for i in range(3)])
        np.testing.assert_array_equal(vector(x, t), expected)


# ---------------------------------------------------------------- parity with upstream 2.1.0


def test_detectors_match_upstream(upstream):
    from spinepose.tools.object_detection import RFDETR, YOLOX
    from spinepose.tools.object_detection.post_processings import multiclass_nms
    from spinepose.tools.object_detection.post_processings import nms as ref_nms

    image = RNG.integers(0, 255, (437, 611, 3), dtype=np.uint8)
    yolox = _bare(YOLOX, model_input_size=(416, 416), nms_thr=0.45, score_thr=0.7)
    ref_canvas, ref_ratio = yolox.preprocess(image)
    feed, ratio = detector.yolox_feed(image, (416, 416))
    assert ratio == ref_ratio
    np.testing.assert_array_equal(feed["input"][0].transpose(1, 2, 0), ref_canvas)
    dets = np.concatenate([RNG.uniform(0, 400, (1, 50, 4)), RNG.uniform(0, 1, (1, 50, 1))], -1).astype(np.float32)
    dets[..., 2:4] = dets[..., 0:2] + RNG.uniform(5, 100, (1, 50, 2))
    ref = yolox.postprocess(dets.copy(), ratio, return_scores=True)
    boxes, scores = detector.decode_yolox(dets, ratio)
    np.testing.assert_array_equal(boxes, ref["xyxy"])
    np.testing.assert_array_equal(scores, ref["confidence"])

    rand_boxes = dets[0, :, :4]
    rand_scores = RNG.uniform(0, 1, (50, 2)).astype(np.float32)
    assert detector.nms(rand_boxes, rand_scores[:, 0], 0.3).tolist() == ref_nms(rand_boxes, rand_scores[:, 0], 0.3)
    ref_dets, _ = multiclass_nms(rand_boxes, rand_scores, nms_thr=0.45, score_thr=0.5)
    ref_dets = ref_dets[(ref_dets[:, 4] > 0.3) & (ref_dets[:, 5] == 0)]
    boxes, scores = detector.decode_boxes_scores(rand_boxes, rand_scores, 1.0, pre_thr=0.5)
    np.testing.assert_allclose(boxes, ref_dets[:, :4], rtol=1e-6)
    np.testing.assert_allclose(scores, ref_dets[:, 4], rtol=1e-6)

    rf = _bare(
        RFDETR,
        input_size=(384, 384),
        score_thr=0.3,
        num_select=300,
        class_ids_np=np.array([0]),
        _imagenet_inv_std=(1.0 / RFDETR.imagenet_std).astype(np.float32),
    )
    ref_x, target = rf.preprocess(image)
    feed, size = detector.rfdetr_feed(image, (384, 384), seed_compat=True)
    np.testing.assert_array_equal(feed["input"][0].transpose(1, 2, 0), ref_x)
    assert tuple(target[0]) == size
    logits = RNG.normal(-3, 2, (1, 300, 91)).astype(np.float32)
    boxes_n = RNG.uniform(0, 1, (1, 300, 4)).astype(np.float32)
    ref = rf.postprocess((boxes_n, logits.copy()), target, return_scores=True)
    boxes, scores = detector.decode_rfdetr(boxes_n, logits, size)
    assert len(scores) > 3
    np.testing.assert_array_equal(boxes, ref["xyxy"])
    np.testing.assert_array_equal(scores, ref["confidence"])


def test_pose_matches_upstream(upstream):
    from spinepose.pose_estimator import SpinePoseEstimator
    from spinepose.tools.pose_estimation import RTMPose

    image = RNG.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    for input_wh in ((192, 256), (288, 384)):
        input_hw = input_wh[::-1]
        rtm = _bare(RTMPose, model_input_size=input_wh, mean=np.array(pose.POSE_MEAN), std=np.array(pose.POSE_STD))
        batch, centers, scales = pose.crop_batch(image, BOXES, input_hw, seed_compat=True)
        sx = RNG.normal(0, 1, (len(BOXES), 37, 2 * input_wh[0])).astype(np.float32)
        sy = RNG.normal(0, 1, (len(BOXES), 37, 2 * input_wh[1])).astype(np.float32)
        sx[0, 3] -= 10  # a keypoint with score <= 0
        sy[0, 3] -= 10
        kp, sc = pose.decode_simcc(sx, sy)
        kp = pose.crop_to_image(kp, centers, scales, input_hw)
        for i, box in enumerate(BOXES):
            ref_img, ref_center, ref_scale = rtm.preprocess(image, box)
            np.testing.assert_array_equal(batch[i], ref_img.transpose(2, 0, 1).astype(np.float32))
            np.testing.assert_array_equal(centers[i], ref_center)
            np.testing.assert_array_equal(scales[i], ref_scale)
            ref_kp, ref_sc = rtm.postprocess((sx[i : i + 1], sy[i : i + 1]), ref_center, ref_scale)
            np.testing.assert_allclose(kp[i], ref_kp[0], atol=1e-3)
            np.testing.assert_array_equal(sc[i], ref_sc[0])
    ref_kp, ref_sc = SpinePoseEstimator._smooth_spine(
        SimpleNamespace(SPINE_IDS=list(skeleton.SPINE_IDS)), kp.astype(np.float64).copy(), sc.copy()
    )
    mine_kp, mine_sc = pose.smooth_spine_v1(kp, sc)
    np.testing.assert_allclose(mine_kp, ref_kp, atol=1e-3)
    np.testing.assert_array_equal(mine_sc, ref_sc)


def test_lifter_matches_upstream(upstream):
    from spinepose.tools.pose_lifting import DefaultPoseLifter
    from spinepose.tools.pose_lifting.post_processings import estimate_camera_intrinsics

    for size, fov in (((640, 480), dict(dfov=84.0)), ((1280, 720), dict(dfov=60.0, hfov=70.0))):
        np.testing.assert_array_equal(
            lifter.estimate_intrinsics(*size, **fov), estimate_camera_intrinsics(*size, **fov)
        )
    k = lifter.estimate_intrinsics(1280, 720)
    rng = np.random.default_rng(5)
    poses = np.stack([world_to_camera(standing_pose(), position=(x, 1.2, 4 + x)) for x in (0.0, 1.0, -1.5)])
    pixels = project(poses, k) + rng.normal(0, 2, (3, 37, 2))
    scores = rng.uniform(0.2, 1.0, (3, 37))
    raw = (poses * 0.7 + rng.normal(0, 0.05, poses.shape)).astype(np.float32)
    ref = _bare(
        DefaultPoseLifter,
        camera_intrinsics=k,
        lifting_thr=0.5,
        mean=np.array((0.0, 0.0)),
        std=np.array((1.0, 1.0)),
        estimate_metric_scale=True,
        primary_subject_height=1.84,
        metric_scale=1.0,
        metric_scale_estimated=False,
        inference=lambda _x: (raw.copy(),),
    )
    ref_out = ref(pixels, scores)
    xy, visible = lifter.lifter_feed(pixels, scores, k)
    ref_xy, ref_vis = ref.preprocess(pixels, scores)
    np.testing.assert_array_equal(xy, ref_xy.astype(np.float32))
    np.testing.assert_array_equal(visible, ref_vis)
    scale = lifter.estimate_metric_scale(lifter.root_relative(raw)[0])
    assert scale == pytest.approx(ref.metric_scale, rel=1e-6)
    np.testing.assert_allclose(lifter.lift_postprocess(raw, xy, visible, scale), ref_out, rtol=1e-4, atol=1e-4)
