"""`python -m quantize` is `python -m quantize.run`."""

from i2v_core import cli
from quantize.run import main

if __name__ == "__main__":
    cli.entry(main, loggers=("quantize",))
