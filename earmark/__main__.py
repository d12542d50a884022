"""``python -m earmark``: the same as the ``earmark`` command."""

import sys

from earmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
