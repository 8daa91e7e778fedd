"""`python -m i2v_adapter.convert` moved to `python -m i2v_adapter.checkpoints.convert`; this name forwards there (run-time only:
importing this module imports nothing)."""

if __name__ == "__main__":
    from i2v_core.cli import forward

    forward("i2v_adapter.convert", "i2v_adapter.checkpoints.convert")
