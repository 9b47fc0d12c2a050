"""Logging set-up shared by every entry point.

Snakemake gives each job a ``log:`` file; the job's library calls log through
the standard ``logging`` module, and this routes that stream to both the file
and stderr so a failing job's log says what happened.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from cxrmask.atomic import unwind_on_sigterm
from cxrmask.errors import CxrmaskError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_file: str | os.PathLike[str] | None = None, level: int = logging.INFO) -> None:
    """Send log records to stderr and, when given, to ``log_file`` (overwritten)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
    warnings.filterwarnings("ignore", category=FutureWarning, module="timm")


def run_step(log_file: str | os.PathLike[str] | None, step: Callable[..., Any], **kwargs: Any) -> Any:
    """Run one workflow step with logging set up; a user-fixable error exits with its message, no traceback.

    Tracebacks are for bugs. A missing file or a bad config value is a
    message the user should see once, plainly, in the job's log and on the
    console; anything else (out of memory, a shape error) is a bug, and its
    whole traceback goes to the job's log before the job fails, so a cluster
    user has more to go on than an exit code.
    """
    setup_logging(log_file)
    unwind_on_sigterm()
    log = logging.getLogger(getattr(step, "__module__", __name__))
    try:
        return step(**kwargs)
    except CxrmaskError as exc:
        log.error("%s", exc)
        sys.exit(1)
    except Exception:
        log.exception("the job crashed; the traceback follows")
        raise
