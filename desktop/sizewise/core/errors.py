"""Errors a person should read: the message is one plain sentence, no traceback."""


class UserError(Exception):
    """Bad input or an unmet condition the user can fix; shown as-is, exit status 1 in the CLI."""
