"""``python -m watersupply``: the same command line as the ``watersupply`` script."""

from watersupply.cli.main import cli

if __name__ == "__main__":
    cli(prog_name="watersupply")
