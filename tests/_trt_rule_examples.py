"""One small ONNX graph per TensorRT rule, each breaking exactly that rule (shared by the rules and builder tests)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _model(nodes, inputs, outputs, initializers=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "example", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in initializers]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _x(shape=(1, 4, 8, 8)):
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))


def _y():
    return helper.make_tensor_value_info("y", TensorProto.FLOAT, None)


def _dq(x_value: np.ndarray, scale=0.1, zero=None) -> onnx.ModelProto:
    """x (float) + DequantizeLinear(constant) -> y."""
    inits = [("q", x_value), ("s", np.array(scale, np.float32))]
    if zero is not None:
        inits.append(("z", zero))
    dq = helper.make_node("DequantizeLinear", ["q", "s", *(["z"] if zero is not None else [])], ["d"], name="the_dq")
    add = helper.make_node("Add", ["x", "d"], ["y"], name="add")
    return _model([dq, add], [_x((1, 4))], [_y()], inits)


def examples() -> dict[str, onnx.ModelProto]:
    """rule -> a graph that breaks it (and nothing else)."""
    nms_inputs = [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 100, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 100]),
    ]
    nms_consts = [
        ("m", np.array([10], np.int64)),
        ("iou", np.array([0.5], np.float32)),
        ("st", np.array([0.1], np.float32)),
    ]
    return {
        "unsupported-op": _model(
            [helper.make_node("Unique", ["x"], ["y"], name="the_unique")],
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
            [_y()],
        ),
        "dynamic-shape": _model(
            [helper.make_node("Relu", ["x"], ["y"], name="the_relu")], [_x(("n", 3, "h", 8))], [_y()]
        ),
        "topk-k": _model(
            [helper.make_node("TopK", ["x", "k"], ["y", "i"], name="the_topk")],
            [_x((1, 8400))],
            [_y(), helper.make_tensor_value_info("i", TensorProto.INT64, None)],
            [("k", np.array([5000], np.int64))],
        ),
        "resize-mode": _model(
            [helper.make_node("Resize", ["x", "roi", "scales"], ["y"], name="the_resize", mode="linear", antialias=1)],
            [_x()],
            [_y()],
            [("roi", np.array([], np.float32)), ("scales", np.array([1, 1, 0.5, 0.5], np.float32))],
            opset=18,
        ),
        "dq-type": _dq(np.arange(4, dtype=np.int32)),
        "qdq-zero-point": _dq(np.arange(4, dtype=np.int8), zero=np.array(3, np.int8)),
        "dq-scalar": _dq(np.array(7, np.int8)),
        "pool-dilations": _model(
            [helper.make_node("MaxPool", ["x"], ["y"], name="the_pool", kernel_shape=[2, 2], dilations=[2, 2])],
            [_x()],
            [_y()],
        ),
        "maxpool-indices": _model(
            [helper.make_node("MaxPool", ["x"], ["y", "i"], name="the_pool", kernel_shape=[2, 2])],
            [_x()],
            [_y(), helper.make_tensor_value_info("i", TensorProto.INT64, None)],
        ),
        "no-kernel": _model(
            [helper.make_node("NonMaxSuppression", ["boxes", "scores", "m", "iou", "st"], ["y"], name="the_nms")],
            nms_inputs,
            [helper.make_tensor_value_info("y", TensorProto.INT64, None)],
            nms_consts,
        ),
    }
