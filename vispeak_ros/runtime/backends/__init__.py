"""Model backends behind one small interface (`base.Backend`); the runtime never imports torch itself."""

from vispeak_ros.runtime.backends.base import Backend, BlockKind, StepResult

__all__ = ["Backend", "BlockKind", "StepResult"]
