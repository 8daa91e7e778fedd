"""Exceptions shared across the package (torch-free)."""


class CheckpointError(ValueError):
    """A checkpoint file or folder does not match the model: bad keys, shapes, layout or file."""


def preview_names(items: list[str], limit: int = 6) -> str:
    """`a, b, c, ... (N more)`: enough names to act on, without flooding the message."""
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
