"""``python -m radmon``: the same as the ``radmon`` command."""

from radmon.cli import main

main()
