"""Small ONNX graph edits shared by the stand-in ``finalize`` hooks."""

from __future__ import annotations

import onnx


def unshare_initializers(model: onnx.ModelProto) -> int:
    """Give every ``Identity(initializer)`` output its own copy of the initializer; returns how many.

    torch's legacy exporter merges equal parameters (all-ones LayerNorm weights, equal biases) into one
    initializer read through ``Identity`` nodes. A graph edit that rewrites one of them would change all,
    and onnx2torch rejects weights shared that way.
    """
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    outputs = {out.name for out in graph.output}
    shared = [n for n in graph.node if n.op_type == "Identity" and n.input[0] in inits and n.output[0] not in outputs]
    for node in shared:
        copy = onnx.TensorProto()
        copy.CopyFrom(inits[node.input[0]])
        copy.name = node.output[0]
        graph.initializer.append(copy)
        graph.node.remove(node)
    return len(shared)
