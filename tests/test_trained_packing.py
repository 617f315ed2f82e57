"""The packaged trained stand-ins: float16-stored weights restored to an exact FP32 graph in the cache."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from spinepose_deploy.errors import ContractError
from spinepose_deploy.zoo.standins import is_standin, trained


def _tiny_model(weight: np.ndarray) -> onnx.ModelProto:
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, weight.shape[1]])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {"standin": "true"})
    return model


def test_pack_halves_the_weights_and_unpack_restores_float32_exactly():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(64, 32)).astype(np.float32)
    model = _tiny_model(weight)
    size = model.ByteSize()
    packed = trained.pack(model)
    assert packed.ByteSize() < 0.6 * size
    assert packed.graph.initializer[0].data_type == TensorProto.FLOAT16
    restored = trained.unpack(onnx.load_from_string(packed.SerializeToString()))
    values = numpy_helper.to_array(restored.graph.initializer[0])
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, weight.astype(np.float16).astype(np.float32))
    props = {p.key: p.value for p in restored.metadata_props}
    assert props == {"standin": "true"}  # the packing note is gone, the stand-in label stays
    onnx.checker.check_model(restored)


def test_values_beyond_float16_stay_float32():
    weight = np.array([[1.0, 1e6]], np.float32)
    packed = trained.pack(_tiny_model(weight))
    assert packed.graph.initializer[0].data_type == TensorProto.FLOAT
    restored = trained.unpack(packed)
    np.testing.assert_array_equal(numpy_helper.to_array(restored.graph.initializer[0]), weight)


def test_unpacking_a_plain_graph_is_refused():
    with pytest.raises(ContractError, match="not a packed graph"):
        trained.unpack(_tiny_model(np.ones((2, 2), np.float32)))


@pytest.mark.skipif(not trained.available(), reason="no packed trained graphs in the package")
def test_packaged_graphs_restore_once_into_the_cache_and_stay_standins():
    assert set(trained.available()) >= {"pose-s-v2", "lifter", "yolox-tiny"}
    total = sum(trained.packed_path(name).stat().st_size for name in trained.available())
    assert total < 40e6  # the budget for committed weights
    path = trained.trained_graph("lifter")
    assert path is not None and path.is_file() and is_standin(path)
    mtime = path.stat().st_mtime_ns
    assert trained.trained_graph("lifter") == path and path.stat().st_mtime_ns == mtime  # cached
    model = onnx.load(str(path))
    assert all(init.data_type != TensorProto.FLOAT16 for init in model.graph.initializer)
    assert trained.trained_graph("rfdetr-n") is None  # no trained graph for it
