"""Deterministic generator of runnable Python programs for the tracec semantics property tests.

`generate(seed)` builds a program that exercises everything the tracec transform rewrites: calls between
functions, bounded recursion, every compound statement (if/while/for/try/with/match, with break, continue,
loop `else`, `return` inside `finally`, re-raise, exceptions crossing several functions), comprehensions
with conditions and walrus, lambdas, closures with nonlocal, global, generators (send, throw, yield
from), async functions, classes (property, staticmethod, classmethod, super()), decorators, augmented
assignment on names, attributes and subscripts, unpacking with starred targets, f-strings (`=`, nested
specs), chained comparisons, short-circuit with printed side effects, multi-line expressions, one-line
compound statements, docstrings and sometimes `from __future__ import annotations`; and the grammar's
corners from program_gen/grammar.py: a walrus, a conditional expression and a lambda as the test of
every condition position, keywords directly followed by `(`, and deeply nested expressions.

Programs only ever print deterministic values (ints, strings, lists; never ids, object reprs, hashes
of str or times), terminate quickly (loop bounds multiply into a per-function cost budget, pool functions
reduce their results modulo a prime so integers stay small) and end by printing a line starting with
"final"; some then raise on purpose (`GeneratedProgram.raises`). The statement and expression grammar is
in `StatementGenerator`; the larger feature templates (generators, async, classes, ...) and the program
layout are in `ProgramBuilder`.
"""

from .builder import generate, generate_program
from .context import GeneratedProgram
from .statements import StatementGenerator

__all__ = ["GeneratedProgram", "StatementGenerator", "generate", "generate_program"]
