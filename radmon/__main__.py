"""``python -m radmon``: the same as the ``radmon`` command."""

from radmon.cli import main

if __name__ == "__main__":  # not when a child process of the detection engine imports it
    main()
