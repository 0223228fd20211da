"""The program layout: header, the chosen feature templates, main() and its ending."""

from __future__ import annotations

import random
import sys
import textwrap
from string import Template

from .context import MODULUS, Ctx, GeneratedProgram, Lines, PoolFunction
from .flow import FlowTemplates
from .functions import FunctionTemplates
from .objects import ObjectTemplates
from .prelude import ENDINGS, PRELUDE
from .statements import StatementGenerator


class ProgramBuilder(FunctionTemplates, ObjectTemplates, FlowTemplates, StatementGenerator):
    """Lays out one program: header, prelude, feature templates, main() and the module tail."""

    def __init__(self, seed: int, small: bool = False) -> None:
        super().__init__(random.Random(seed), Lines())
        self.seed = seed
        self.small = small
        self.future = self.rng.random() < 0.3
        self.features: list[PoolFunction] = []  # called once each by main()
        self.introspect: list[str] = []  # plain functions whose metadata main() prints

    def emit(self, template: str, **values) -> str:
        """Add a block of code written with $placeholders; returns the text added."""
        text = Template(textwrap.dedent(template).strip("\n")).substitute(values)
        self.out.add(text)
        self.out.add("\n")
        return text

    def feature(self, name: str, arity: int, cost: int) -> None:
        fn = PoolFunction(name, arity, cost)
        self.pool.append(fn)
        self.features.append(fn)

    def build(self) -> GeneratedProgram:
        r = self.rng
        self.header()
        self.out.add(PRELUDE)
        templates = [self.t_recursion, self.t_generator, self.t_async, self.t_class, self.t_decorator,
                     self.t_chain, self.t_finally, self.t_match, self.t_counter, self.t_probe,
                     self.t_keyword_parens, self.t_deep]
        if sys.version_info >= (3, 11):
            templates.append(self.t_groups)
        if self.small:
            chosen = r.sample(templates, r.randint(1, 2)) + [self.t_plain] * r.randint(1, 2)
        else:
            chosen = r.sample(templates, r.randint(3, 7)) + [self.t_plain] * r.randint(2, 4)
        r.shuffle(chosen)
        for template in chosen:
            template()
        self.main()
        raises = self.tail()
        return GeneratedProgram(self.seed, "\n".join(self.out.lines).rstrip("\n") + "\n", raises)

    def header(self) -> None:
        r = self.rng
        if r.random() < 0.2:
            self.out.add("#!/usr/bin/env python3\n# -*- coding: utf-8 -*-")
        if r.random() < 0.6:
            self.out.add(r.choice([f'"""Generated program {self.seed}."""',
                                   f'"""Generated program {self.seed}.\n\nIt prints what it computes.\n"""']))
        if self.future:
            self.out.add("from __future__ import annotations")
        if r.random() < 0.1:  # no simple statement at module level before the first compound one
            self.out.add("try:\n    import asyncio\nexcept ImportError:\n    asyncio = None")
            self.out.add("import contextlib, functools, inspect, sys")
        else:
            self.out.add("import asyncio\nimport contextlib\nimport functools\nimport inspect\nimport sys")

    def main(self) -> None:
        r = self.rng
        self.cost = 0
        results = []
        with self.out.block("def main(seed_value):"):
            self.out.add('"""Call every feature once and combine the results."""')
            ctx = Ctx(vars=["seed_value"], func="main")
            for fn in self.features:
                if r.random() < 0.5:
                    self.stmt(ctx)
                result = self.fresh("r")
                args = ", ".join(self.expr(ctx) for _ in range(fn.arity))
                self.out.add(f'{result} = {fn.name}({args})\nprint("{fn.name}", {result})')
                ctx.vars.append(result)
                results.append(result)
            for name in self.introspect:
                self.out.add(r.choice([f'print("meta", {name}.__name__, {name}.__qualname__, {name}.__doc__)',
                                       f'print("signature", inspect.signature({name}))',
                                       f'print("annotations", {name}.__annotations__)']))
            self.out.add(f"return ({' + '.join(results) or '0'}) % {MODULUS}")
        self.out.add("\n")

    def tail(self) -> str | None:
        r = self.rng
        if r.random() < 0.3:
            self.out.add(f'if __name__ == "__main__":\n    RESULT = main({self.lit()})\nelse:\n    RESULT = -1')
        else:
            self.out.add(f"RESULT = main({self.lit()})")
        self.cost = 0
        self.body(Ctx(vars=["RESULT"], global_ok=True), r.randint(0, 3))
        self.out.add('print("final", RESULT, TOTAL)')
        if r.random() < 0.12:
            code, raises = r.choice(ENDINGS)
            self.out.add(Template(code).substitute(k=r.randint(0, 3)))
            self.out.lines.append("")
            return raises
        self.out.lines.append("")
        return None

    # -- feature templates: each defines functions and registers one that main() calls ---------------



def generate_program(seed: int, small: bool = False) -> str:
    """The source of the program for `seed` (same seed, same program, on the same Python minor version)."""
    return generate(seed, small).source




def generate(seed: int, small: bool = False) -> GeneratedProgram:
    """The program for `seed` with the exception it raises on purpose (if any); `small` programs use fewer
    features (quicker to instrument, for the test suite)."""
    return ProgramBuilder(seed, small).build()
