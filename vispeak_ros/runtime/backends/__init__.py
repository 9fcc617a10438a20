"""Model backends behind one small interface (`base.Backend`); the runtime never imports torch itself.

`factory.create_backend(config)` builds the configured one (torch, onnxruntime, tensorrt, or auto).
"""

from vispeak_ros.runtime.backends.base import Backend, BlockKind, StepResult

__all__ = ["Backend", "BlockKind", "StepResult"]
