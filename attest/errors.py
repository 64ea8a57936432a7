"""The one exception tree of attest.

Every error we raise derives from :class:`AttestError`; only the entry points
(``entrypoint.py`` and :mod:`attest.cli`) catch it and report it, as one line.
"""

from __future__ import annotations


class AttestError(Exception):
    """An error the user can act on.

    ``hint`` says what to do about it; it is printed after the message.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def report(self) -> str:
        """The one-line report: the message, then the hint if there is one."""
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


def one_line(text: str, limit: int = 500) -> str:
    """Text fit for a one-line report: whitespace runs (servers' messages hold blank lines)
    become single spaces, and the rest is cut to ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class UsageError(AttestError):
    """A bad command-line argument or action input; the message names it."""


class CredentialsError(AttestError):
    """Registry credentials could not be read (a broken config file or helper)."""
