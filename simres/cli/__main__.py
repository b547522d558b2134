"""``python -m simres.cli``: the same command line as the ``simres`` script."""

from simres.cli import main

main()
