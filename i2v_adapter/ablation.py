"""`python -m i2v_adapter.ablation` moved to `python -m evaluation.ablation`; this name forwards there (run-time only:
importing this module imports nothing)."""

if __name__ == "__main__":
    from i2v_core.cli import forward

    forward("i2v_adapter.ablation", "evaluation.ablation")
