"""The one way tracec writes a file: a temp file in the same folder, then os.replace, so a reader (or a
crash, or Ctrl-C) never leaves half a file behind. (The runtime keeps its own copy: it imports nothing
from tracec.)"""

from __future__ import annotations

import os
import tempfile


def write_atomic(path: str | os.PathLike[str], data: bytes | str, mode: int | None = None,
                 sync: bool = False) -> None:
    """`data` as bytes, or str encoded as UTF-8 exactly as given (no newline translation). `mode`: the
    permission bits to give the file; `sync`: fsync before the rename (user source files)."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".tracec-", suffix=".tmp")
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
