"""Command modules, one per stage; each exposes a ``COMMANDS`` list of click commands."""
