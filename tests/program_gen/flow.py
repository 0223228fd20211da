"""Feature templates: match, counters, probes, groups. Each defines functions and registers one that main() calls."""

from __future__ import annotations

from .context import MODULUS


class FlowTemplates:
    """match, counters, probes, groups."""

    def t_match(self) -> None:
        r = self.rng
        name = self.fresh("shape")
        items = ["0", "-3", "[a, 2, 3]", '{"kind": "pt", "x": a, "z": 1}', f"{name}_Pt(0, b)",
                 f"{name}_Pt(a, a)", '"text"', "4.5", "(1,)", "b % 5", "[b]", '{"kind": "other"}']
        self.emit('''
            class ${name}_Pt:
                __match_args__ = ("x", "y")

                def __init__(self, x, y):
                    self.x = x
                    self.y = y


            def ${name}_classify(item):
                match item:
                    case 0 | 1:
                        return "small"
                    case int(n) if n < 0:
                        return f"negative {n}"
                    case [x, y, *rest]:
                        return f"sequence {x} {y} {len(rest)}"
                    case [single]:
                        return f"single {single}"
                    case {"kind": "pt", "x": x, **others}:
                        return f"mapping {x} {sorted(others)}"
                    case ${name}_Pt(x=0, y=y):
                        return f"on axis {y}"
                    case ${name}_Pt(x, y) if x == y:
                        return "diagonal"
                    case str() as s:
                        return "string " + s
                    case float() | (_,):
                        return "float or 1-tuple"
                    case _:
                        return "other"


            def $name(a, b):
                labels = [${name}_classify(item) for item in [$items]]
                print("match", labels)
                return len(labels) + sum(len(label) for label in labels)
            ''', name=name, items=", ".join(r.sample(items, r.randint(4, len(items)))))
        self.feature(name, 2, 30)

    def t_counter(self) -> None:
        """Closures with nonlocal, a global, lambdas with defaults bound in a loop."""
        name = self.fresh("counter")
        self.emit('''
            def ${name}_make(start):
                count = start

                def step(by=1):
                    nonlocal count
                    count += by
                    return count

                def peek():
                    return count

                return step, peek


            def $name(a):
                global TOTAL
                step, peek = ${name}_make(a % 50)
                for i in range($n):
                    step(i)
                TOTAL += peek()
                fns = [lambda k=i: k * 2 + a % 7 for i in range(3)]
                late = [lambda: i for i in range(3)]
                print("counter", peek(), [f() for f in fns], [f() for f in late], TOTAL)
                return peek() % $mod
            ''', name=name, n=self.rng.randint(1, 4), mod=MODULUS)
        self.feature(name, 1, 15)

    def t_probe(self) -> None:
        """Dunder methods that print: each must run exactly as often as in the plain program."""
        name = self.fresh("Probe")
        self.emit('''
            class $name:
                def __init__(self, n):
                    self.n = n

                def __bool__(self):
                    print("bool", self.n)
                    return self.n > 0

                def __len__(self):
                    print("len", self.n)
                    return abs(self.n)

                def __iter__(self):
                    print("iter", self.n)
                    return iter(range(abs(self.n) % 4))

                def __getitem__(self, i):
                    print("getitem", i)
                    return i * self.n

                def __getattr__(self, attr):
                    print("getattr", attr)
                    return len(attr)

                def __repr__(self):
                    raise RuntimeError("repr of a probe must never be needed")


            def use_$name(a):
                p = $name(a % 5 - 2)
                if p:
                    print("truthy")
                n = len(p)
                items = [x for x in p]
                v = p[2] + p.missing
                q = p and $name(1)
                r = not q
                print("probe", n, items, v, r)
                return (n + sum(items) + v) % $mod
            ''', name=name, mod=MODULUS)
        self.feature(f"use_{name}", 1, 20)

    def t_groups(self) -> None:
        name = self.fresh("groups")
        self.emit('''
            def $name(a):
                try:
                    raise ExceptionGroup("many", [ValueError(a), KeyError(a % 3), TypeError("t")])
                except* ValueError as group:
                    print("values", [e.args for e in group.exceptions])
                except* (KeyError, TypeError) as group:
                    print("others", sorted(type(e).__name__ for e in group.exceptions))
                return a % $mod
            ''', name=name, mod=MODULUS)
        self.feature(name, 1, 5)
