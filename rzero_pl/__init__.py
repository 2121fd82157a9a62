"""rzero-pl: R-Zero self-evolving reasoning (arXiv 2508.05004) as a Lightning trainer."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rzero-pl")  # pyproject.toml's, as installed (one place to change it)
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "unknown"
