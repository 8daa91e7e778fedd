"""Exceptions shared across the package (torch-free)."""


class CheckpointError(ValueError):
    """A checkpoint file or folder does not match the model: bad keys, shapes, layout or file."""
