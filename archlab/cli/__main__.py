"""``python -m archlab.cli``: the command line."""

import sys

from archlab.cli import app

sys.exit(app())
