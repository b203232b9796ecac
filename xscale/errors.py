"""User-facing errors.

Anything a user can fix (bad config, unknown name, missing or malformed file) raises
`XScaleError`. The CLI prints its message as one line on stderr and exits with code 2.
"""


class XScaleError(Exception):
    """An error in user input; its message is one line that names the file/key/line at fault."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class StorageError(XScaleError):
    """The output folder's disk is full or read-only: nothing wrong with the input (exit 1), the
    message says what to free or fix; complete stages are kept and the same command resumes."""

    exit_code = 1
