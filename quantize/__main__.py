"""`python -m quantize` is `python -m quantize.run`."""

import logging
import sys

from quantize.run import main

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if "--quiet" not in sys.argv[1:]:
        logging.getLogger("quantize").setLevel(logging.INFO)
    sys.exit(main())
