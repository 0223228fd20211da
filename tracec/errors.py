"""One root for the errors tracec reports to its user, and the exit status each one means.

A command raises; `tracec.cli.main` prints `tracec COMMAND: error: MESSAGE` once, on one line, and exits
with the error's `exit_status`. Nothing else in tracec prints an error and returns a status by hand.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1       # changes or problems found, a patch refused, a run that failed
EXIT_USAGE = 2          # a bad command line, task file or configuration
EXIT_INTERNAL = 123     # tracec's own failure (a file left uninstrumented, a crash)
EXIT_INTERRUPTED = 130  # Ctrl-C


class TracecError(Exception):
    """An error with a one-line message for the user."""

    exit_status = EXIT_FINDINGS


class UsageError(TracecError):
    """A bad command line, or input the user must fix before tracec can start."""

    exit_status = EXIT_USAGE


def one_line(text: object, limit: int | None = None) -> str:
    """`text` with its whitespace runs (line breaks too) made single spaces, cut to `limit` characters."""
    line = " ".join(str(text).split())
    return line if limit is None or len(line) <= limit else line[: limit - 3] + "..."
