"""The one error type of the model layer: a checkpoint or setting that cannot be used as given."""


class CheckpointError(ValueError):
    """A checkpoint, encoder folder or setting is missing or wrong; the message is one line naming what and where."""
