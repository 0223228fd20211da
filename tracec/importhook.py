"""Import hook: instrument the project's own modules as they are imported.

`install(root)` puts a finder at ``sys.meta_path[0]``.  For every import it asks the finders
behind it for the spec (so editable installs and custom finders keep working) and takes over
only plain source modules that live under the project root, outside site-packages, the stdlib,
virtualenvs, tracec itself and the ``.tracec`` work directory, and whose source passes the
cheap ``wants_instrumentation`` pre-check.  Everything else is imported exactly as before.

Instrumented bytecode goes to its own cache file beside the normal one
(``__pycache__/mod.cpython-311.tracec-0.1.0[-all].pyc``) so it can never be mistaken for, or
overwrite, the plain ``.pyc`` that ``python`` itself uses.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.machinery
import importlib.util
import marshal
import os
import sys
import sysconfig
import warnings
from pathlib import Path
from types import CodeType

from tracec.fileio import write_atomic
from tracec.project import is_under, relative_posix, tracec_version

# Files whose line text differs after instrumentation, by absolute filename.  The runner uses it
# to drop column carets in tracebacks, which would point at the wrong columns of those lines.
CHANGED_LINES: dict[str, frozenset[int]] = {}

_WARNED: set[str] = set()   # files whose instrumentation failed, warned about once per process
_CACHE_MAGIC = importlib.util.MAGIC_NUMBER + b"TRC2"
_SKIP_PARTS = frozenset({"site-packages", "dist-packages", "__pycache__"})


@functools.lru_cache(maxsize=1)
def tracec_fingerprint() -> bytes:
    """16 bytes identifying this tracec build: its version and the state of its source files.

    Instrumented output depends on the transform and the runtime it calls; an editable install
    changes both without changing the version, so caches must be keyed on the files too.
    """
    digest = hashlib.sha256(tracec_version().encode())
    for folder in _tracec_dirs():
        for path in sorted(Path(folder).rglob("*.py")):
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
    return digest.digest()[:16]


def _tracec_dirs() -> tuple[str, ...]:
    """Real directories of tracec and its two sub-packages (separate folders in editable mode)."""
    dirs = {os.path.dirname(os.path.realpath(__file__))}
    for name in ("tracec.runtime", "tracec.transforms"):
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            dirs.add(os.path.realpath(location))
    return tuple(sorted(dirs))


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(
        sorted({os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib") if key in paths})
    )


def tracec_frame_dirs() -> tuple[str, ...]:
    """Directories whose frames are tracec's own (hidden from user tracebacks)."""
    return _tracec_dirs()


class ProjectFiles:
    """Decides which source files count as the project's own code."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = os.path.realpath(root)
        self._excluded = (*_stdlib_dirs(), *_tracec_dirs(), os.path.join(self.root, ".tracec"))

    def __contains__(self, filename: str) -> bool:
        real = os.path.realpath(filename)
        if not is_under(real, self.root) or not real.endswith(".py"):
            return False
        if _SKIP_PARTS.intersection(Path(real).parts):
            return False
        if any(is_under(real, folder) for folder in self._excluded):
            return False
        return not self._in_virtualenv(os.path.dirname(real))

    @functools.lru_cache(maxsize=4096)
    def _in_virtualenv(self, folder: str) -> bool:
        # A virtualenv is any directory below the root carrying pyvenv.cfg.
        parent = os.path.dirname(folder)
        if folder == self.root or parent == folder or not is_under(folder, self.root):
            return False
        if os.path.isfile(os.path.join(folder, "pyvenv.cfg")):
            return True
        return self._in_virtualenv(parent)


def _changed_lines(original: str, instrumented: str) -> frozenset[int]:
    before, after = original.splitlines(), instrumented.splitlines()
    return frozenset(
        number
        for number, (old, new) in enumerate(zip(before, after), start=1)
        if old != new
    )


def compile_instrumented(result, filename: str) -> CodeType:
    """Compile an InstrumentResult; splice in the header when the transform could not place it.

    The header is inserted into the AST (not the text), so every user statement keeps its line
    and ``runpy`` (which calls ``get_code`` and never ``exec_module``) still runs the header.
    """
    if result.header_placed or not result.header:
        return compile(result.code, filename, "exec", dont_inherit=True)
    from tracec.transforms.header import header_in_tree

    return compile(header_in_tree(ast.parse(result.code, filename), result.header, filename), filename, "exec",
                   dont_inherit=True)


def compile_project_source(
    source_bytes: bytes, filename: str, *, path: str, module: str, all_functions: bool
) -> CodeType:
    """Instrument and compile one module; a syntax error surfaces as Python's own SyntaxError."""
    from tracec.transforms import instrument_source, wants_instrumentation

    text = importlib.util.decode_source(source_bytes)
    if not wants_instrumentation(text, all_functions):
        return compile(source_bytes, filename, "exec", dont_inherit=True)
    result = instrument_source(text, path=path, module=module, all_functions=all_functions)
    if result.internal is not None:   # tracec's own failure: the module runs as written, untraced
        if filename not in _WARNED:
            _WARNED.add(filename)
            warnings.warn(f"tracec: {result.internal}", ImportWarning, stacklevel=2)
        return compile(source_bytes, filename, "exec", dont_inherit=True)
    if result.error is not None:
        # Let Python report the error itself (exact message, filename, line and caret) ...
        code = compile(source_bytes, filename, "exec", dont_inherit=True)
        # ... and if Python accepts what LibCST cannot parse, run the module untraced.
        warnings.warn(f"tracec: not instrumented: {result.error}", ImportWarning, stacklevel=2)
        return code
    CHANGED_LINES[filename] = _changed_lines(text, result.code)
    return compile_instrumented(result, filename)


def tracec_cache_path(source_path: str, all_functions: bool) -> str | None:
    """`__pycache__/NAME.<cache tag>.tracec-<version>[-all].pyc`, or None without a cache tag."""
    try:
        normal = importlib.util.cache_from_source(source_path)
    except NotImplementedError:
        return None
    mode = "-all" if all_functions else ""
    return f"{normal[: -len('.pyc')]}.tracec-{tracec_version()}{mode}.pyc"


class TracecLoader(importlib.machinery.SourceFileLoader):
    """SourceFileLoader that instruments in `source_to_code` and caches under its own name."""

    def __init__(self, fullname: str, path: str, *, root: str, all_functions: bool):
        super().__init__(fullname, path)
        self.root = Path(root)
        self.all_functions = all_functions

    def source_to_code(self, data, path, *, _optimize=-1):  # noqa: D401 - importlib API
        filename = os.fspath(path)
        return compile_project_source(
            bytes(data),
            filename,
            path=relative_posix(filename, self.root),
            module=self.name,
            all_functions=self.all_functions,
        )

    def get_code(self, fullname):
        source_path = self.get_filename(fullname)
        cache_path = tracec_cache_path(source_path, self.all_functions)
        # keyed on the source's content, not its mtime: the optimizer's workers write candidate files
        # in quick succession, two of them of one size can share an mtime tick
        source = self.get_data(source_path)
        stamp = _CACHE_MAGIC + tracec_fingerprint() + hashlib.sha256(source).digest()[:16]
        if cache_path is not None:
            cached = self._read_cache(cache_path, stamp)
            if cached is not None:
                code, changed = cached
                if changed:
                    CHANGED_LINES[source_path] = frozenset(changed)
                return code
        code = self.source_to_code(source, source_path)
        # a file tracec failed on is not cached: each process runs it untraced and says so again
        if cache_path is not None and not sys.dont_write_bytecode and source_path not in _WARNED:
            changed = tuple(sorted(CHANGED_LINES.get(source_path, ())))
            try:
                write_atomic(cache_path, stamp + marshal.dumps((code, changed)))
            except OSError:
                pass  # read-only tree: same as Python, just don't cache
        return code

    @staticmethod
    def _read_cache(cache_path: str, stamp: bytes):
        try:
            with open(cache_path, "rb") as handle:
                data = handle.read()
        except OSError:
            return None
        if not data.startswith(stamp):
            return None
        try:
            code, changed = marshal.loads(data[len(stamp) :])
        except (EOFError, ValueError, TypeError):
            return None
        return (code, changed) if isinstance(code, CodeType) else None


class TracecFinder:
    """Meta path finder that hands project modules wanting instrumentation to TracecLoader."""

    def __init__(self, root: str | os.PathLike[str], all_functions: bool = False):
        self.files = ProjectFiles(root)
        self.all_functions = all_functions

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "tracec" or fullname.startswith("tracec."):
            return None
        spec = self._spec_from_other_finders(fullname, path, target)
        if spec is None or not self._wants(spec):
            return spec
        loader = TracecLoader(
            fullname, spec.origin, root=self.files.root, all_functions=self.all_functions
        )
        ours = importlib.util.spec_from_file_location(
            fullname,
            spec.origin,
            loader=loader,
            submodule_search_locations=spec.submodule_search_locations,
        )
        ours.cached = tracec_cache_path(spec.origin, self.all_functions)
        return ours

    def _spec_from_other_finders(self, fullname, path, target):
        # Ask the finders behind us, in order, exactly as the import system would.
        for finder in list(sys.meta_path):
            if finder is self or isinstance(finder, TracecFinder):
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def _wants(self, spec) -> bool:
        if type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return False
        if not spec.origin or spec.origin not in self.files:
            return False
        from tracec.transforms import wants_instrumentation

        try:
            with open(spec.origin, "rb") as handle:
                text = importlib.util.decode_source(handle.read())
        except (OSError, SyntaxError, UnicodeDecodeError):
            return False  # let the normal loader report unreadable files
        return wants_instrumentation(text, self.all_functions)

    def invalidate_caches(self) -> None:
        self.files._in_virtualenv.cache_clear()


def install(root: str | os.PathLike[str], all_functions: bool = False) -> TracecFinder:
    """Insert a TracecFinder for `root` at sys.meta_path[0] (replacing an earlier one)."""
    uninstall()
    finder = TracecFinder(root, all_functions)
    sys.meta_path.insert(0, finder)
    return finder


def uninstall() -> None:
    """Remove every TracecFinder from sys.meta_path (modules already imported stay as they are)."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, TracecFinder)]
