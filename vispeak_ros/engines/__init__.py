"""Offline engine building: ONNX export (`export`), the quantization agreement gate (`gate`), the CLI (`cli`).

Nothing at run time imports this package's builders; the runtime reads what they wrote (manifest + graphs).
"""
