"""The error type for user mistakes, the entry-point wrapper that prints it, and the
command-line parser every script shares (its mistakes are UserErrors too)."""

import argparse
import signal
import sys


class UserError(Exception):
    """A mistake in input, flags or files: shown as one line, never a traceback."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes (an unknown flag, a missing value) raise UserError, so that
    run_main prints them as one line naming the script instead of usage and exit."""

    def error(self, message):
        raise UserError(f"{self.prog}: {message} (see --help)")


def run_main(main, argv=None):
    """Call main(argv); turn a UserError into `error: ...` on stderr and exit 2.

    Ctrl-C (SIGINT) exits 130 and SIGTERM 143 (128 + the signal, as a shell
    reports a process the signal killed), after one line on stderr naming the
    MLflow runs tracking.start_run ended KILLED.
    """
    try:
        return main(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as interrupt:
        signum = getattr(interrupt, "signum", signal.SIGINT)  # tracking.Terminated sets SIGTERM
        print(f"interrupted ({signal.Signals(signum).name}): {_killed_runs(interrupt)}", file=sys.stderr)
        sys.exit(128 + signum)


def _killed_runs(interrupt: KeyboardInterrupt) -> str:
    runs = getattr(interrupt, "killed_runs", [])
    if not runs:
        return "no MLflow run was open"
    named = ", ".join(f"{run_id} ({name})" for run_id, name in runs)
    return f"MLflow run{'s' if len(runs) > 1 else ''} {named} ended KILLED"
