"""``python -m bayesbin``: see :mod:`bayesbin.cli`."""

import sys

from bayesbin.cli import main

if __name__ == "__main__":
    sys.exit(main())
