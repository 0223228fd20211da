"""Grammar-based fuzzing of the transform (bounded): every hypothesmith program that compiles must instrument
with `--all` (no crash, no `.error`, no `.internal`), compile again, keep its line count and statements.

The checking lives in tests/fuzz_grammar.py, which also runs the programs and checks 10 000 of them.
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ProcessPoolExecutor

import pytest

# not imported here: importing hypothesmith writes Hypothesis' charmap cache into the working directory
if importlib.util.find_spec("hypothesmith") is None:
    pytest.skip("hypothesmith is not installed", allow_module_level=True)

import fuzz_grammar as fuzz
import fuzz_sandbox

COUNT = 120
SHARES = {"grammar": 5, "node-def": 1}  # from_node() draws 3-10x slower (some seeds far more); tests/fuzz_grammar.py draws all three
CHUNK = 40


def describe(failures) -> str:
    lines = []
    for outcome in failures:
        lines.append(f"{outcome.name}: {outcome.status}: {outcome.detail}\n    source: {outcome.source!r}")
    return f"{len(failures)} cases fail:\n" + "\n".join(lines)


def test_hypothesmith_programs_instrument_compile_and_keep_their_lines():
    programs = fuzz.generate(COUNT, seed=0, jobs=2, shares=SHARES, chunk_size=CHUNK)
    assert len(programs) == COUNT
    items = fuzz.cases(programs)
    assert sum(name.endswith(" function") for name, _ in items) >= COUNT // 10  # the pass gets code to rewrite
    outcomes = fuzz.check_all(items, jobs=2, run_programs=False)  # running them: the benchmark's job
    assert sum(o.rewritten for o in outcomes) >= COUNT // 10
    # a program LibCST itself cannot parse or print back unchanged is left uninstrumented, and said so:
    # accepted only when LibCST really fails on it (checked here, not trusted from the message)
    limits = [o for o in outcomes if o.status in LIBCST_LIMITS and libcst_fails_on(o.source)]
    failures = [o for o in outcomes if o.status != "ok" and o not in limits]
    assert not failures, describe(failures)
    assert len(limits) <= COUNT // 50, describe(limits)


LIBCST_LIMITS = ("libcst-cannot-parse", "libcst-round-trip")


def libcst_fails_on(source: str) -> bool:
    import libcst

    try:
        return libcst.parse_module(source).code != source
    except libcst.ParserSyntaxError:
        return True


def test_drawing_depends_on_the_seed_alone():
    with ProcessPoolExecutor(max_workers=1) as pool:  # where fuzz_grammar draws: Hypothesis is set up there
        first, again, other = pool.map(fuzz.draw_chunk, ["grammar"] * 3, [7, 7, 8], [0] * 3, [10] * 3)
    assert first == again != other


def test_only_self_contained_programs_run():
    assert fuzz_sandbox.unsafe("print(len([1, 2]), sorted({3, 1}))\nraise ValueError(2)\n") is None
    for source in ("import os\n", "open('x', 'w')\n", "().__class__\n", "exec('1')\n", "__builtins__\n",
                   "print(id(1))\n", "print(globals())\n"):
        assert fuzz_sandbox.unsafe(source), source
