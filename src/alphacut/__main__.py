"""``python -m alphacut``: the same command line as ``alphacut``."""

from alphacut.cli import main

main()
