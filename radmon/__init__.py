"""radmon core: domain models, units, configuration and the store that every other package uses."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("radmon")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
