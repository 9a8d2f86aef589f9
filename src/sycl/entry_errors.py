"""How an entry point ends on an error a person can fix: its message as one line on stderr and exit status 1.

A traceback is for a bug. For no server at the configured URL, or a file to fix, it only pushes the message
that says what to do off the screen. Hydra's own switch, HYDRA_FULL_ERROR=1, brings the traceback back.
"""

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

Result = TypeVar("Result")


def exit_briefly_on(errors: tuple[type[Exception], ...], run: Callable[[], Result]) -> Result:
    """``run()``; on one of ``errors``, exit with status 1 and ``<script>: error: <message>`` on stderr, as
    argparse does. ``SystemExit`` is no ``Exception``: Hydra passes it through without printing a traceback."""
    try:
        return run()
    except errors as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise SystemExit(f"{Path(sys.argv[0]).name}: error: {error}") from None
