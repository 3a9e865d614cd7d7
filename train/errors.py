"""The one kind of error every command reports the same way: lines on stderr, exit status 2, no traceback."""

from __future__ import annotations

import sys


class UserError(ValueError):
    """Bad input or configuration that the user can fix; the message says how."""

    def lines(self) -> list[str]:
        return [f"error: {self}"]


class UsageError(UserError):
    """A command line that cannot run at all (exit status 2)."""


def exit_with(error: UserError) -> int:
    for line in error.lines():
        print(line, file=sys.stderr)
    return 2
