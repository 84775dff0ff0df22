"""``python -m crawler.cli``: the ``claimwatch`` command."""

from crawler.cli.app import main

main()
