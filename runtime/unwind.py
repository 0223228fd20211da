"""Exceptions leaving traced frames, seen as they leave (CPython 3.12+, `sys.monitoring`).

Without this, an exception that untraced code catches (a script's `try/except` around `main()`, a
library's retry loop) is invisible to the recorder: the traced calls it ended only look unfinished. The
PY_UNWIND event fires in each frame an exception leaves, with the frame still current, so the recorder
can give every traced frame on the way its real error node (type, message, line).

PY_UNWIND is a process-wide event on CPython 3.12-3.14 (`set_local_events` refuses it), so it is turned on
only while a recording is active; frames the recorder does not know cost one dictionary lookup each.
On 3.10 and 3.11 nothing here is active and the recorder keeps its fallback (see docs/COMPILER.md).
"""

from __future__ import annotations

import sys
from typing import Any, cast

_monitoring = getattr(sys, "monitoring", None)
_TOOL_NAME = "tracec"
_tool: int | None = None


def available() -> bool:
    return _monitoring is not None


def enable(callback) -> bool:
    """Deliver PY_UNWIND to `callback(exc, frame)`; False where this Python or a free tool id is missing."""
    global _tool
    if _monitoring is None:
        return False
    if _tool is None:
        # ids 0-2 and 5 are named for debuggers, coverage, profilers and optimizers; take a free other one
        free = [i for i in (4, 3) if _monitoring.get_tool(i) is None]
        if not free:
            return False
        _tool = free[0]
        _monitoring.use_tool_id(_tool, _TOOL_NAME)

    def on_unwind(code, offset, exc):
        callback(exc, sys._getframe(1))

    _monitoring.register_callback(_tool, _monitoring.events.PY_UNWIND, on_unwind)
    _monitoring.set_events(_tool, _monitoring.events.PY_UNWIND)
    return True


def disable() -> None:
    if _tool is not None:
        monitoring = cast(Any, _monitoring)   # not None: only enable() sets _tool, once it found sys.monitoring
        monitoring.set_events(_tool, 0)
        monitoring.register_callback(_tool, monitoring.events.PY_UNWIND, None)
