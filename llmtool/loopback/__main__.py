"""``python -m llmtool.loopback``: run the loopback server in the foreground."""

import sys

from .cli import main

sys.exit(main())
