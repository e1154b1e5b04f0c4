"""The error type for user mistakes, and the entry-point wrapper that prints it."""

import sys


class UserError(Exception):
    """A mistake in input, flags or files: shown as one line, never a traceback."""


def run_main(main, argv=None):
    """Call main(argv); turn a UserError into `error: ...` on stderr and exit 2."""
    try:
        return main(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
