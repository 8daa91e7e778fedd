"""`python -m i2v_adapter.shipped` moved to `python -m i2v_adapter.training.weights_folder`; this name forwards there (run-time only:
importing this module imports nothing)."""

if __name__ == "__main__":
    from i2v_core.cli import forward

    forward("i2v_adapter.shipped", "i2v_adapter.training.weights_folder")
