"""Why onnxruntime cannot load a model that is a valid ONNX file: an operator set newer than it knows (the real
reason, instead of "truncated or corrupt")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The protobuf varint at ``pos`` and the position after it."""
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """The (field number, value) pairs of one serialised protobuf message: an int for varints, bytes otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield key >> 3, value
            continue
        if wire == 2:
            size, pos = _varint(data, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise ValueError(f"protobuf wire type {wire} is not in an ONNX model")
        if pos + size > len(data):
            raise ValueError("truncated field")
        yield key >> 3, data[pos:pos + size]
        pos += size


def model_opsets(data: bytes) -> dict[str, int]:
    """The operator sets (domain -> version) a serialised ``onnx.ModelProto`` imports, read without the onnx package
    (field 8 of the model, each an ``OperatorSetIdProto``: 1 domain, 2 version). Raises ValueError when the bytes are
    not a protobuf message."""
    opsets: dict[str, int] = {}
    for number, value in _fields(data):
        if number == 8 and isinstance(value, bytes):
            parts = dict(_fields(value))
            domain, version = parts.get(1, b""), parts.get(2, 0)
            if isinstance(domain, bytes) and isinstance(version, int):
                opsets[domain.decode("utf-8", "replace")] = version
    return opsets


#: onnxruntime's own words for the newest operator set it knows (``model_load_utils.h``).
_SUPPORTED = re.compile(r"support for domain ai\.onnx is till opset (\d+)")


def newer_opset_reason(path: str | Path, error: str) -> str | None:
    """One sentence when ``path`` asks for an ONNX operator set newer than this onnxruntime supports, else None
    (also when the file cannot be parsed at all: then it is truncated or corrupt, as the caller says). ``error`` is
    onnxruntime's load error, which names the newest operator set it supports."""
    found = _SUPPORTED.search(error)
    if found is None:
        return None
    supported = int(found.group(1))
    try:
        import onnxruntime as ort

        opsets = model_opsets(Path(path).read_bytes())
    except (OSError, ValueError, ImportError):  # (not protobuf or unreadable: the caller's message stands)
        return None
    version = max((v for d, v in opsets.items() if d in ("", "ai.onnx")), default=0)
    if version <= supported:
        return None
    return (f"it needs ONNX operator set {version}, newer than onnxruntime {ort.__version__} loads (it supports up to "
            f"{supported}). Update onnxruntime, or export the model with opset {supported} or lower.")


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
