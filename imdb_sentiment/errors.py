"""The error type for user mistakes, and the entry-point wrapper that prints it."""

import signal
import sys


class UserError(Exception):
    """A mistake in input, flags or files: shown as one line, never a traceback."""


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
