"""What models exist: one ModelSpec per released graph, and the mode presets.

Facts come from the upstream SpinePose 2.1.0 package (URLs, input sizes, normalisation) and the
papers/model cards (parameter counts, FLOPs). The I/O contract is what every fetched or built
graph is checked against before use (``check_contract``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum

from ..errors import InvalidOptionError, UnknownModelError, check_choice, suggest

_HF_POSE = "https://huggingface.co/dfki-av/spinepose/resolve/main"
_MMPOSE_SDK = "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk"
_RFDETR = "https://huggingface.co/saifkhichi96/opendetect/resolve/main/rfdetr"

POSE_MEAN = (123.675, 116.28, 103.53)
POSE_STD = (58.395, 57.12, 57.375)
IMAGENET_MEAN = (123.675, 116.28, 103.53)  # 0.485/0.456/0.406 * 255
IMAGENET_STD = (58.395, 57.12, 57.375)  # 0.229/0.224/0.225 * 255

SPINEPOSE_LICENSE = "CC-BY-NC-4.0 (non-commercial)"


class Role(str, Enum):
    DETECTOR = "detector"
    POSE = "pose"
    LIFTER = "lifter"


ROLES: tuple[str, ...] = tuple(role.value for role in Role)  # the graphs of a mode, in pipeline order


class Family(str, Enum):
    YOLOX = "yolox"
    RFDETR = "rfdetr"
    RTMPOSE = "rtmpose"
    LIFTER = "lifter"


Dim = int | str  # int: static size; str: symbolic (any size)


@dataclass(frozen=True)
class TensorSpec:
    """One input/output of a graph. ``name=None`` means the released name is not fixed."""

    name: str | None
    shape: tuple[Dim, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class ModelSpec:
    """A released graph and everything needed to fetch, check and feed it."""

    name: str
    role: Role
    family: Family
    variant: str
    url: str
    input_size: tuple[int, int]  # (height, width); for the lifter (K, 2)
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    params_m: float | None  # published parameter count, millions
    gflops: float | None  # published GFLOPs (None: not published; stand-in estimate documented)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    color: str = "rgb"  # channel order the network was trained on
    upstream_color: str = "bgr"  # what upstream 2.1.0 feeds it (seed_compat)
    resize: str = "letterbox"  # letterbox | stretch | affine | none
    archive_member: str | None = None  # file inside a zip download
    sha256_prefix: str | None = None  # from the URL (YOLOX SDK zips)
    version: str | None = None  # v1 / v2 for pose
    license: str = SPINEPOSE_LICENSE
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def filename(self) -> str:
        """Local file name of the ONNX graph in the cache."""
        return f"{self.name}.onnx"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["role"] = self.role.value
        data["family"] = self.family.value
        return data


def _pose(variant: str, version: str) -> ModelSpec:
    dataset = {"v1": "spinetrack", "v2": "simspine"}[version]
    height, width = (384, 288) if variant == "x" else (256, 192)
    batch = "32xb128" if variant == "x" else "32xb256"
    size = f"{height}x{width}"
    params, gflops = {"s": (5.975, 0.72), "m": (14.340, 1.98), "l": (28.664, 4.22), "x": (50.689, 17.37)}[variant]
    return ModelSpec(
        name=f"pose-{variant}-{version}",
        role=Role.POSE,
        family=Family.RTMPOSE,
        variant=variant,
        url=f"{_HF_POSE}/spinepose-{variant}_{batch}-10e_{dataset}-{size}.onnx",
        input_size=(height, width),
        inputs=(TensorSpec("input", ("batch", 3, height, width)),),
        outputs=(
            TensorSpec("simcc_x", ("batch", 37, 2 * width)),
            TensorSpec("simcc_y", ("batch", 37, 2 * height)),
        ),
        params_m=params,
        gflops=gflops,
        mean=POSE_MEAN,
        std=POSE_STD,
        color="rgb",
        upstream_color="bgr",
        resize="affine",
        version=version,
        notes="CSPNeXt-P5 + RTMCC head, SimCC split ratio 2.0",
    )


def _yolox(variant: str, digest: str, size: int, params: float, gflops: float) -> ModelSpec:
    stem = f"yolox_{variant}_8xb8-300e_humanart-{digest}"
    return ModelSpec(
        name=f"yolox-{variant}",
        role=Role.DETECTOR,
        family=Family.YOLOX,
        variant=variant,
        url=f"{_MMPOSE_SDK}/{stem}.zip",
        input_size=(size, size),
        inputs=(TensorSpec("input", (1, 3, size, size)),),
        outputs=(TensorSpec("dets", (1, "num_dets", 5)), TensorSpec("labels", (1, "num_dets"), "int64")),
        params_m=params,
        gflops=gflops,
        color="bgr",
        upstream_color="bgr",
        resize="letterbox",
        archive_member="end2end.onnx",
        sha256_prefix=digest,
        license="Apache-2.0 (YOLOX / MMPose, trained on Human-Art)",
        notes="mmdeploy SDK end2end graph, NMS inside; raw 0-255 BGR, top-left letterbox on 114 grey",
    )


def _rfdetr(variant: str, size: int, params: float, gflops: float) -> ModelSpec:
    return ModelSpec(
        name=f"rfdetr-{variant}",
        role=Role.DETECTOR,
        family=Family.RFDETR,
        variant=variant,
        url=f"{_RFDETR}/rfdetr_{variant}_v142_{size}x{size}.onnx",
        input_size=(size, size),
        inputs=(TensorSpec("input", ("batch", 3, size, size)),),
        outputs=(TensorSpec("dets", ("batch", 300, 4)), TensorSpec("labels", ("batch", 300, 91))),
        params_m=params,
        gflops=gflops,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        color="rgb",
        upstream_color="bgr",
        resize="stretch",
        license="Apache-2.0 (RF-DETR, Roboflow)",
        notes="normalised cx,cy,w,h boxes + 91 COCO logits (index 0 background); sigmoid top-k, person only",
    )


LIFTER = ModelSpec(
    name="lifter",
    role=Role.LIFTER,
    family=Family.LIFTER,
    variant="default",
    url=f"{_HF_POSE}/simspine/3d/onnx/spinepose_lifter_8xb256-90e_simspine-37x2.onnx",
    input_size=(37, 2),
    inputs=(TensorSpec(None, ("batch", 37, 2)),),
    outputs=(TensorSpec(None, ("batch", 37, 3)),),
    params_m=None,
    gflops=None,
    mean=(0.0, 0.0),
    std=(1.0, 1.0),
    color="none",
    upstream_color="none",
    resize="none",
    notes="normalised camera coordinates in, root-relative 3D out (root = keypoint 19)",
)

# Published numbers: YOLOX (Megvii) tiny 5.06M/6.45G@416, m 25.3M/73.8G, x 99.1M/281.9G @640;
# RF-DETR (Roboflow, v1.4.2 card) N 30.5M, S 32.1M, M 33.7M, L 33.9M; FLOPs are not published for every
# size, so the stand-ins document their own estimate (see zoo/standins).
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        *(_pose(v, "v2") for v in ("s", "m", "l")),
        *(_pose(v, "v1") for v in ("s", "m", "l", "x")),
        _yolox("tiny", "6f3252f9", 416, 5.06, 6.45),
        _yolox("m", "c2c7a14a", 640, 25.3, 73.8),
        _yolox("x", "a39d44ed", 640, 99.1, 281.9),
        _rfdetr("n", 384, 30.5, None),
        _rfdetr("s", 512, 32.1, None),
        _rfdetr("m", 576, 33.7, None),
        _rfdetr("l", 704, 33.9, None),
        LIFTER,
    ]
}


@dataclass(frozen=True)
class Mode:
    """A preset: which detector and pose graph a mode uses."""

    name: str
    pose_variant: str
    detectors: dict[str, str]  # detector kind -> model name
    versions: tuple[str, ...]

    def pose_model(self, version: str) -> str:
        if version not in self.versions:

            raise InvalidOptionError(
                f"--model-version: mode '{self.name}' has only {', '.join(self.versions)}, not '{version}'"
                " (upstream silently used v1 here)."
            )
        return f"pose-{self.pose_variant}-{version}"


MODES: dict[str, Mode] = {
    "small": Mode("small", "s", {"yolox": "yolox-tiny", "rfdetr": "rfdetr-n"}, ("v2", "v1")),
    "medium": Mode("medium", "m", {"yolox": "yolox-m", "rfdetr": "rfdetr-s"}, ("v2", "v1")),
    "large": Mode("large", "l", {"yolox": "yolox-x", "rfdetr": "rfdetr-m"}, ("v2", "v1")),
    "xlarge": Mode("xlarge", "x", {"yolox": "yolox-x", "rfdetr": "rfdetr-l"}, ("v1",)),
}
DEFAULT_MODE = "small"
DEFAULT_DETECTOR = "yolox"
DETECTORS = ("yolox", "rfdetr")
VERSIONS = ("v2", "v1")
DEFAULT_VERSION = VERSIONS[0]  # the latest


def get_spec(name: str) -> ModelSpec:
    """Look up a model by name; unknown names raise with a close-match suggestion."""
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(
            f"model '{name}' is unknown.{suggest(name, MODELS)} Known: {', '.join(MODELS)}"
        ) from None


def get_mode(name: str) -> Mode:
    try:
        return MODES[name]
    except KeyError:
        raise UnknownModelError(
            f"--mode: '{name}' is unknown.{suggest(name, MODES)} Known: {', '.join(MODES)}"
        ) from None


@dataclass(frozen=True)
class ModeSelection:
    """The three graphs a mode + detector + version resolves to."""

    detector: ModelSpec
    pose: ModelSpec
    lifter: ModelSpec

    def graphs(self) -> dict[str, ModelSpec]:
        return {"detector": self.detector, "pose": self.pose, "lifter": self.lifter}


def resolve_mode(
    mode: str = DEFAULT_MODE, detector: str = DEFAULT_DETECTOR, version: str = DEFAULT_VERSION
) -> ModeSelection:
    """Resolve a mode preset to its detector, pose and lifter specs."""
    preset = get_mode(mode)
    check_choice("--detector", detector, DETECTORS)
    if version == "latest":
        version = DEFAULT_VERSION
    check_choice("--model-version", version, VERSIONS)
    return ModeSelection(
        detector=get_spec(preset.detectors[detector]),
        pose=get_spec(preset.pose_model(version)),
        lifter=LIFTER,
    )
