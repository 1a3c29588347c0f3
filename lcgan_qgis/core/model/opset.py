"""Why onnxruntime cannot load a model that is a valid ONNX file: an operator set newer than it knows (the real
reason, instead of "truncated or corrupt")."""

from __future__ import annotations

from pathlib import Path


def newer_opset_reason(path: str | Path) -> str | None:
    """One sentence when ``path`` asks for an ONNX operator set newer than this onnxruntime supports, else None
    (also when the file cannot be parsed at all: then it is truncated or corrupt, as the caller says)."""
    try:
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(path), load_external_data=False)
        supported = int(onnx.defs.onnx_opset_version())
    except Exception:  # (not ONNX, truncated, no onnx package: the caller's message stands)
        return None
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version > supported:
            return (f"it needs ONNX operator set {opset.version}, newer than onnxruntime {ort.__version__} loads (the "
                    f"onnx package here knows up to {supported}). Update onnxruntime, or export the model with opset "
                    f"{supported} or lower.")
    return None


#: Operators of an already quantised (QDQ or integer-operator) graph.
QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger",
                           "QLinearMatMul", "DynamicQuantizeLinear"})


def quantized_reason(model: object, path: str | Path) -> str | None:
    """A sentence when the loaded ONNX ``model`` (an ``onnx.ModelProto``) is already quantised: quantising it again
    would calibrate int8 on int8 (onnxruntime fails on the QDQ nodes, or the copy loses more)."""
    found = sorted({node.op_type for node in model.graph.node if node.op_type in QUANTIZED_OPS})  # type: ignore[attr-defined]
    if not found:
        return None
    return (f"{path} is already quantised (it holds {', '.join(found)} nodes); quantise its float model instead "
            f"(e.g. {Path(path).name.replace('.int8', '')}).")
