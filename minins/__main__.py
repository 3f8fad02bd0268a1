"""``python3 -m minins``: the command line."""
from .cli import entry

entry()
