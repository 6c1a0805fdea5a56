"""storyloom: collaborative comics with consistent characters for Discord and Slack."""

__version__ = "0.1.0"
