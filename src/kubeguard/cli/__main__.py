"""``python -m kubeguard.cli``: the same as the ``kubeguard`` command."""

from kubeguard.cli import main

main()
