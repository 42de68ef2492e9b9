"""The ``cidbridge`` command line (typer)."""
