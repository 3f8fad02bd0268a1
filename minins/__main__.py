"""``python3 -m minins``: the command line."""
import sys

from .cli import main

sys.exit(main())
