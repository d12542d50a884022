"""``python -m earmark.ui.dashboard --frame NAME --commands SOCKET``."""

import sys

from .app import main

sys.exit(main())
