"""Errors a person can act on: each says where the bad input is and what was expected."""


class RadmonError(Exception):
    """Base of radmon's own errors."""


class InputError(RadmonError, ValueError):
    """Bad input (a file, a payload, a configuration); the CLI turns it into exit status 2."""
