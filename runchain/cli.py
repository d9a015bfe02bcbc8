"""The ``runchain`` command line. It parses arguments, prints results, and turns
runchain's named errors into messages and non-zero exit codes."""

from __future__ import annotations

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="runchain")
def main() -> None:
    """Run chains on Weights & Biases: checkpoint lineage across resumed and forked runs.

    \b
    Example:
        python do_run.py --n_steps 200            # a root run
        python do_run.py --resume-from <id>@99    # fork it from step 99
        runchain --version
    """
