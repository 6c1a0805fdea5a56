"""storyloom: collaborative comics with consistent characters for Discord and Slack."""

from importlib.metadata import version

# One version, in pyproject.toml; the installed package's metadata carries it here.
__version__ = version("storyloom")
