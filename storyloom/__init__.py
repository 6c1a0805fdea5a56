"""storyloom: collaborative comics with consistent characters for Discord and Slack."""


def __getattr__(name: str) -> str:
    # One version, in pyproject.toml; the installed package's metadata carries it here. Read
    # when asked for, so importing the package (`storyloom --help`) does not scan metadata.
    if name == "__version__":
        from importlib.metadata import version

        return version("storyloom")
    raise AttributeError(f"module 'storyloom' has no attribute {name!r}")
