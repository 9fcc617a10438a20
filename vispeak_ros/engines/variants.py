"""Lower-precision (and, for the gate's own test, deliberately damaged) variants of the exported LLM step graph.

`quantize_int8`: onnxruntime dynamic quantization, INT8 weights of every MatMul with a constant weight
(activations quantized per call; the CPU execution provider runs it). The vision and audio graphs stay FP32:
they run once per second and their errors reach the decisions only through the LLM.
`damage_graph`: adds seeded Gaussian noise to every weight matrix; a graph that the agreement gate must reject.
Both are deterministic: the same input gives the same bytes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np


def quantize_int8(source: str | Path, target: str | Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = Path(target)
    target.unlink(missing_ok=True)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # its root-logger advice to pre-process (shape inference) is noise here
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    finally:
        logging.disable(previous)
    return target


def damage_graph(source: str | Path, target: str | Path, noise: float = 0.5, seed: int = 0) -> Path:
    """Every float initializer with 2+ dimensions gets noise of `noise` times its own standard deviation."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    rng = np.random.default_rng(seed)
    for i, tensor in enumerate(model.graph.initializer):
        array = numpy_helper.to_array(tensor)
        if array.ndim < 2 or array.dtype not in (np.float32, np.float16):
            continue
        damaged = array + rng.standard_normal(array.shape).astype(array.dtype) * noise * float(array.std())
        model.graph.initializer[i].CopyFrom(numpy_helper.from_array(damaged.astype(array.dtype), tensor.name))
    target = Path(target)
    onnx.save_model(model, str(target))
    return target
