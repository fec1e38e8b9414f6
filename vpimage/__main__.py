"""``python -m vpimage``: the same as the ``vpimage`` command."""

import sys

from vpimage.cli import main

sys.exit(main())
