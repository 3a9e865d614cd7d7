"""How every command reports progress: `logging` lines from this package, progress bars only on a terminal."""

from __future__ import annotations

import logging
import sys


def setup_command_logging() -> None:
    """INFO lines from `train.*` on stderr; no progress bars when stderr is redirected to a log file,
    where their carriage returns and escape codes bury every other line."""
    logging.basicConfig(format="%(message)s")
    logging.getLogger("train").setLevel(logging.INFO)
    if not sys.stderr.isatty():
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
