"""The synthetic world: deterministic scenes whose ground truth agrees with itself, and the accuracy metrics."""

from __future__ import annotations

import numpy as np
import pytest

from spinepose_deploy.ops.pose import crop_to_image
from spinepose_deploy.ops.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS, ROOT_ID, SPINE_IDS
from spinepose_deploy.synth import dataset, metrics
from spinepose_deploy.synth import skeleton as sk
from spinepose_deploy.synth.render import RenderConfig, marker_colors, render_scene

SEEDS = range(40)


@pytest.fixture(scope="module")
def scenes():
    return [render_scene(s) for s in SEEDS]


def test_same_seed_same_scene_other_seed_other_scene():
    a, b, c = render_scene(123), render_scene(123), render_scene(124)
    assert a.image.tobytes() == b.image.tobytes()
    for name in ("boxes", "keypoints", "visible", "keypoints_3d", "intrinsics"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.image.shape != c.image.shape or a.image.tobytes() != c.image.tobytes()


def test_scene_shapes_and_types(scenes):
    for s in scenes:
        n = len(s.boxes)
        assert 1 <= n <= 3
        assert s.image.dtype == np.uint8 and s.image.ndim == 3 and s.image.shape[2] == 3
        assert s.keypoints.shape == (n, NUM_KEYPOINTS, 2) and s.visible.shape == (n, NUM_KEYPOINTS)
        assert s.keypoints_3d.shape == (n, NUM_KEYPOINTS, 3) and s.intrinsics.shape == (3, 3)
        assert (s.keypoints_3d[..., 2] > 0.5).all()  # everyone in front of the camera


def test_projection_of_3d_matches_2d(scenes):
    for s in scenes:
        k = s.intrinsics.astype(np.float64)
        p = s.keypoints_3d.astype(np.float64)
        uv = np.stack([k[0, 0] * p[..., 0] / p[..., 2] + k[0, 2], k[1, 1] * p[..., 1] / p[..., 2] + k[1, 2]], -1)
        np.testing.assert_allclose(uv, s.keypoints, atol=1e-3)


def test_visibility_inside_image_and_nearest_figure_unoccluded(scenes):
    occluded = 0
    for s in scenes:
        h, w = s.image.shape[:2]
        u, v = s.keypoints[..., 0], s.keypoints[..., 1]
        inside = (np.round(u) >= 0) & (np.round(u) < w) & (np.round(v) >= 0) & (np.round(v) < h)
        assert not (s.visible & ~inside).any()
        # figures are drawn far to near: nothing covers the last one
        np.testing.assert_array_equal(s.visible[-1], inside[-1])
        depth = s.keypoints_3d[:, ROOT_ID, 2]
        assert (np.diff(depth) <= 0).all()
        occluded += int((inside & ~s.visible).sum())
    assert occluded > 0  # other figures do hide keypoints in this many scenes


def test_boxes_contain_visible_keypoints(scenes):
    for s in scenes:
        for box, kp, vis in zip(s.boxes, s.keypoints, s.visible, strict=True):
            pts = kp[vis]
            assert (pts[:, 0] >= box[0] - 1).all() and (pts[:, 0] <= box[2] + 1).all()
            assert (pts[:, 1] >= box[1] - 1).all() and (pts[:, 1] <= box[3] + 1).all()
            h, w = s.image.shape[:2]
            assert 0 <= box[0] <= box[2] <= w and 0 <= box[1] <= box[3] <= h


def test_bone_lengths_do_not_depend_on_pose():
    rng = np.random.default_rng(0)
    body = sk.sample_body(rng)
    bones = [("left_shoulder", "left_elbow"), ("right_elbow", "right_wrist"), ("left_hip", "left_knee"),
             ("right_knee", "right_ankle")]
    lengths = []
    for _ in range(20):
        pts = sk.forward_kinematics(body, sk.sample_pose(rng))
        assert np.allclose(pts[ROOT_ID], 0.0)
        spine = np.linalg.norm(np.diff(pts[list(SPINE_IDS)], axis=0), axis=1).sum()
        lengths.append([np.linalg.norm(pts[KEYPOINT_INDEX[a]] - pts[KEYPOINT_INDEX[b]]) for a, b in bones] + [spine])
    lengths = np.asarray(lengths)
    np.testing.assert_allclose(lengths, np.broadcast_to(lengths[0], lengths.shape), rtol=1e-9)
    np.testing.assert_allclose(lengths[0, 0], body.upper_arm * body.scale)


def test_left_is_left_when_facing_the_camera():
    pts = sk.forward_kinematics(sk.Body(), sk.sample_pose(np.random.default_rng(1)))
    cam = pts @ sk.body_to_camera(0.0, 0.0, 0.0).T + np.array([0.0, 0.0, 4.0])
    # a person facing the camera has the left shoulder on the image's right, the head above the hip
    assert cam[KEYPOINT_INDEX["left_shoulder"], 0] > cam[KEYPOINT_INDEX["right_shoulder"], 0]
    assert cam[KEYPOINT_INDEX["head"], 1] < cam[ROOT_ID, 1]
    assert cam[KEYPOINT_INDEX["nose"], 2] < cam[KEYPOINT_INDEX["neck_03"], 2]  # nose towards the camera


def test_marker_colours_are_distinct():
    colors = marker_colors().astype(np.float64)
    assert colors.shape == (NUM_KEYPOINTS, 3)
    dist = np.linalg.norm(colors[:, None] - colors[None], axis=-1) + np.eye(NUM_KEYPOINTS) * 1e9
    assert dist.min() >= 60


def test_pose_crops_map_back_to_image_keypoints():
    scene = render_scene(5, people=2)
    rows = np.arange(len(scene.boxes))
    batch, kpts, vis = dataset.pose_batch(scene, scene.boxes, rows, (256, 192))
    assert batch.shape == (2, 3, 256, 192) and batch.dtype == np.float32
    from spinepose_deploy.ops.pose import bbox_xyxy2cs, fix_aspect_ratio

    centers, scales = bbox_xyxy2cs(scene.boxes)
    back = crop_to_image(kpts, centers, fix_aspect_ratio(scales, 192 / 256), (256, 192))
    np.testing.assert_allclose(back, scene.keypoints, atol=1e-2)
    np.testing.assert_array_equal(vis, scene.visible)


def test_heldout_set_is_fixed_and_usable():
    a, b = dataset.heldout_scenes(4), dataset.heldout_scenes(4)
    assert all(x.image.tobytes() == y.image.tobytes() for x, y in zip(a, b, strict=True))
    persons = dataset.people(a)
    assert len(persons) >= 1
    assert ((persons.boxes[:, 2:] - persons.boxes[:, :2]).max(1) >= dataset.MIN_BOX_PX).all()
    assert (persons.visible.sum(1) >= dataset.MIN_VISIBLE).all()


def _sole_alignment(scene) -> np.ndarray:
    """Per figure |cos| between the two soles' normals (heel, big toe, small toe of each foot)."""
    out = []
    for pts in scene.keypoints_3d:
        normals = []
        for side in ("left", "right"):
            heel, big, small = (pts[KEYPOINT_INDEX[f"{side}_{p}"]] for p in ("heel", "big_toe", "small_toe"))
            n = np.cross(big - heel, small - heel)
            normals.append(n / np.linalg.norm(n))
        out.append(abs(float(normals[0] @ normals[1])))
    return np.asarray(out)


def test_a_standing_share_draws_flat_footed_figures():
    # the pose graph is fine-tuned on upright flat-footed figures as the spine clips film them (--standing)
    standing = np.concatenate([_sole_alignment(render_scene(s, RenderConfig(standing=1.0))) for s in range(6)])
    anyhow = np.concatenate([_sole_alignment(render_scene(s)) for s in range(6)])
    assert (standing > 1 - 1e-6).all()  # both soles flat on one floor
    assert (anyhow < 0.99).mean() > 0.5  # posed anywhere within the joint limits, feet point anywhere


def test_lifter_samples_are_normalised_projections():
    xy, vis, target = dataset.lifter_samples(50, seed=3)
    assert xy.shape == (50, NUM_KEYPOINTS, 2) and target.shape == (50, NUM_KEYPOINTS, 3)
    assert (xy[~vis] == 0).all()
    np.testing.assert_allclose(target[:, ROOT_ID], 0.0, atol=1e-6)
    assert 0.5 < vis.mean() < 1.0
    again = dataset.lifter_samples(50, seed=3)
    np.testing.assert_array_equal(again[0], xy)


# ------------------------------------------------------------------ metrics


def test_pck_threshold_is_a_fraction_of_box_size():
    gt = np.zeros((1, NUM_KEYPOINTS, 2))
    boxes = np.array([[0.0, 0.0, 50.0, 100.0]])  # size 100 px
    vis = np.ones((1, NUM_KEYPOINTS), bool)
    pred = gt.copy()
    pred[0, :10, 0] = 4.9  # within 5 px
    pred[0, 10:20, 1] = 5.1  # just outside
    vis[0, 30:] = False
    pred[0, 30:] = 1000.0  # invisible: ignored
    result = metrics.pck(pred, gt, vis, boxes)
    assert result["pck"] == pytest.approx(20 / 30)
    assert result["keypoints"] == 30
    assert result["per_keypoint_pck"][0] == 1.0 and result["per_keypoint_pck"][15] == 0.0
    assert np.isnan(result["per_keypoint_pck"][31])
    assert result["per_keypoint_error"][12] == pytest.approx(0.051)


def test_mpjpe_is_root_relative_in_mm():
    gt = np.zeros((2, NUM_KEYPOINTS, 3))
    pred = gt + np.array([1.0, 2.0, 3.0])  # a pure translation costs nothing
    assert metrics.mpjpe(pred, gt) == pytest.approx(0.0)
    pred[:, 0, 0] += 0.037
    assert metrics.mpjpe(pred, gt) == pytest.approx(37.0 / NUM_KEYPOINTS)


def test_ap50():
    gt = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)]
    perfect = metrics.ap50(gt, [np.array([0.9, 0.8])], gt)
    assert perfect == pytest.approx(1.0)
    half = metrics.ap50([gt[0][:1]], [np.array([0.9])], gt)
    assert half == pytest.approx(0.5)
    # a confident false positive first: precision 0.5 at recall 0.5 and 2/3 at recall 1
    boxes = [np.array([[100, 100, 110, 110], [0, 0, 10, 10], [20, 20, 30, 30]], float)]
    assert metrics.ap50(boxes, [np.array([0.99, 0.9, 0.8])], gt) == pytest.approx(0.5 * 2 / 3 + 0.5 * 2 / 3)
    # a duplicate of a matched box is a false positive
    dup = [np.array([[0, 0, 10, 10], [0, 0, 10, 11]], float)]
    assert metrics.ap50(dup, [np.array([0.9, 0.8])], [gt[0][:1]]) == pytest.approx(1.0)
    assert metrics.ap50([np.zeros((0, 4))], [np.zeros(0)], gt) == 0.0


def test_walking_clip_is_deterministic_and_people_enter_and_leave():
    from spinepose_deploy.synth.video import WalkingClip

    clip = WalkingClip(5, frames=120, people=3, size=(120, 160))
    frames = list(clip)
    again = WalkingClip(5, frames=120, people=3, size=(120, 160)).frame(60)
    np.testing.assert_array_equal(frames[60].image, again.image)
    counts = [len(f.ids) for f in frames]
    assert min(counts) < max(counts)  # someone enters or leaves during the clip
    for f in frames:
        assert f.keypoints.shape == (len(f.ids), 37, 2) and f.visible.shape == (len(f.ids), 37)
        assert ((f.boxes[:, 2:] >= f.boxes[:, :2]).all()) if len(f.ids) else True
    walker = next(i for i in range(3) if any(i in f.ids for f in frames))
    seen = [f.keypoints[list(f.ids).index(walker), 19] for f in frames if walker in f.ids]
    assert np.abs(np.diff(np.asarray(seen)[:, 0])).max() < 10  # walks smoothly: the hip moves a few px a frame


def test_track_accuracy_counts_misses_and_identity_switches():
    from types import SimpleNamespace

    from spinepose_deploy.pipeline.result import PoseResult
    from spinepose_deploy.synth.metrics import track_accuracy

    box = np.array([[10, 10, 60, 110]], np.float32)
    kpts = np.stack([np.linspace(15, 55, 37), np.linspace(15, 105, 37)], axis=-1)[None].astype(np.float32)
    truth = [SimpleNamespace(ids=np.array([7]), boxes=box, keypoints=kpts, visible=np.ones((1, 37), bool))] * 3

    def result(keypoints: np.ndarray, track: int) -> PoseResult:
        return PoseResult(boxes=box, box_scores=np.ones(1, np.float32), keypoints=keypoints,
                          scores=np.ones((1, 37), np.float32), track_ids=np.array([track]))  # fmt: skip

    # found; far off (the person is missed); found again under another track id
    results = [result(kpts, 0), result(kpts + 100, 0), result(kpts + 1, 4)]
    score = track_accuracy(truth, results)
    assert score["pck"] == 2 / 3 and score["recall"] == 2 / 3 and score["id_switches"] == 1
