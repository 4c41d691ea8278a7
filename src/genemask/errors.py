"""The one exception type for user mistakes: the CLI prints it as a single line, no traceback."""


class UserError(Exception):
    """Bad input from the user (file, record, key): message names what was wrong and what was expected."""
