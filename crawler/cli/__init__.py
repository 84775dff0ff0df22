"""The ``claimwatch`` command line (crawler/cli/app.py collects the command modules)."""
