"""Files written whole or not at all."""

import os

__all__ = ["atomic_output"]


class atomic_output:
    """Open ``path`` for writing through a temporary file renamed into place on success only,
    so that a failed run leaves nothing half-written."""

    def __init__(self, path, mode="wb"):
        self.path, self.tmp, self.mode = path, f"{path}.partial", mode

    def __enter__(self):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self.file = open(self.tmp, self.mode)
        return self.file

    def __exit__(self, exc_type, exc, tb):
        self.file.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)
