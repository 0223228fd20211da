"""The one way tracec writes a file: a temp file in the same folder, then os.replace, so a reader (or a
crash, or Ctrl-C) never leaves half a file behind. (The runtime keeps its own copy: it imports nothing
from tracec.)

The temp file is removed on every exit Python sees (an exception, Ctrl-C, and SIGTERM/SIGHUP inside
`signals_as_exit`). Only SIGKILL or a power cut can leave one; its name (TEMP_PREFIX...TEMP_SUFFIX) is
what `tracec check` reports (TC302)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import tempfile
import threading

TEMP_PREFIX, TEMP_SUFFIX = ".tracec-", ".tmp"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: str | os.PathLike[str], data: bytes | str, mode: int | None = None,
                 sync: bool = False) -> None:
    """`data` as bytes, or str encoded as UTF-8 exactly as given (no newline translation). `mode`: the
    permission bits to give the file; `sync`: fsync before the rename (user source files)."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def _exit(signum, frame) -> None:
    raise SystemExit(128 + signum)   # the shell's status for "killed by signum"


@contextlib.contextmanager
def signals_as_exit():
    """SIGTERM and SIGHUP raise SystemExit while inside, so `finally` blocks and write_atomic's cleanup
    run (Python's default for them is to die on the spot, leaving the temp file behind). A no-op outside
    the main thread, where handlers cannot be set. A signal the process was started ignoring (`nohup`
    ignores SIGHUP) stays ignored: the user asked for the write to survive it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = [name for name in ("SIGTERM", "SIGHUP")
             if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) is not signal.SIG_IGN]
    previous = {name: signal.signal(getattr(signal, name), _exit) for name in names}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), signal.SIG_DFL if handler is None else handler)
