"""`python -m runtime_py.verify` moved to `python -m evaluation.verify`; this name forwards there (run-time only:
importing this module imports nothing)."""

if __name__ == "__main__":
    from i2v_core.cli import forward

    forward("runtime_py.verify", "evaluation.verify")
