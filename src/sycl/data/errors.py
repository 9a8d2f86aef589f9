"""The one error type for bad input data: it names the file, the line and the field."""

from pathlib import Path


class DataFormatError(ValueError):
    """Raised before training starts when an input file is missing or malformed."""

    def __init__(self, path: str | Path, message: str, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = str(path), line, field
        where = self.path + (f", line {line}" if line is not None else "") + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {message}")
