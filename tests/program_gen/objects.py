"""Feature templates: classes, decorators, call chains, finally. Each defines functions and registers one that main() calls."""

from __future__ import annotations

from .context import MODULUS


class ObjectTemplates:
    """Classes, decorators, call chains, finally."""

    def t_class(self) -> None:
        r = self.rng
        name = self.fresh("Acc")
        self.emit('''
            class $name:
                """Accumulates clamped values."""
                scale = $k

                def __init__(self, start=0):
                    self.total = start
                    self.items = []

                def __repr__(self):
                    return f"$name({self.total}, {self.items})"

                def add(self, x):
                    self.total += x * self.scale
                    self.items.append(x)
                    return self

                @property
                def size(self):
                    return len(self.items)

                @size.setter
                def size(self, n):
                    del self.items[n:]

                @staticmethod
                def clamp(x, lo=-50, hi=50):
                    return lo if x < lo else hi if x > hi else x

                @classmethod
                def build(cls, *values, **options):
                    acc = cls(options.get("start", 0))
                    for v in values:
                        acc.add(cls.clamp(v))
                    return acc


            class ${name}_Sub($name):
                def add(self, x):
                    print("sub add", x)
                    return super().add(x + 1)


            def use_$name(a, b):
                acc = ${name}_Sub.build(a % 100, b % 100, $k, start=3)
                acc.add(a % 9).add(b % 9)
                acc.total -= 1
                acc.items[0] *= 2
                acc.items[-1] += acc.size
                acc.size = 3
                print("class", acc, acc.size, $name.clamp(a * 10), $name.__doc__, type(acc).__name__)
                return acc.total % $mod
            ''', name=name, k=r.randint(1, 3), mod=MODULUS)
        self.feature(f"use_{name}", 2, 30)

    def t_decorator(self) -> None:
        r = self.rng
        name = self.fresh("dec")
        outer = r.choice(["@logged", "@repeat(2)\n@logged", "@logged\n@repeat(2)"])
        self.emit('''
            $outer
            def $name(a, b=2, *rest, scale=1, **extra):
                """Decorated: $name."""
                total = a + b + sum(rest)
                for key, value in sorted(extra.items()):
                    total += value if key != "skip" else 0
                return (total * scale) % $mod


            def use_$name(a, b):
                first = $name(a)
                second = $name(a, b, 1, 2, scale=$k, extra_one=3, skip=4)
                print("decorated", $name.__name__, $name.__doc__, first, second)
                return (first + second) % $mod
            ''', name=name, outer=outer, k=r.randint(1, 3), mod=MODULUS)
        self.feature(f"use_{name}", 2, 20)

    def t_chain(self) -> None:
        """An exception raised three calls deep, re-raised, wrapped with `from`, caught at the top."""
        r = self.rng
        name = self.fresh("chain")
        k, k2 = r.randint(2, 4), r.randint(3, 5)
        self.emit('''
            class ${name}_Deep(AppError):
                def __init__(self, code):
                    super().__init__(f"deep {code}")
                    self.code = code


            def ${name}_deep(x):
                if x % $k == $j:
                    raise ${name}_Deep(x)
                if x % $k2 == $j2:
                    raise KeyError(x)
                return x * 2


            def ${name}_middle(x):
                try:
                    return ${name}_deep(x) + 1
                finally:
                    print("middle finally", x)


            def ${name}_relay(x):
                try:
                    return ${name}_middle(x)
                except KeyError as error:
                    print("relay re-raises", error.args)
                    raise
                except ${name}_Deep as error:
                    raise AppError(f"wrapped {error.code}") from error


            def $name(a):
                total = 0
                for x in range(a % 3, a % 3 + 5):
                    try:
                        total += ${name}_relay(x)
                    except AppError as error:
                        print("top caught", type(error).__name__, error, type(error.__cause__).__name__)
                    except KeyError as error:
                        print("top key", error)
                        continue
                    else:
                        total += 1
                    finally:
                        total += 10
                return total % $mod
            ''', name=name, k=k, j=r.randint(0, k - 1), k2=k2, j2=r.randint(0, k2 - 1), mod=MODULUS)
        self.raisers.append((f"{name}_relay({{}})", frozenset({"AppError", "KeyError"})))
        self.feature(name, 1, 60)

    def t_finally(self) -> None:
        """`return` and `break` inside `finally` swallow exceptions."""
        r = self.rng
        name = self.fresh("fin")
        k = r.randint(1, 6)
        self.emit('''
            def ${name}_swallow(x):
                try:
                    if x > $k:
                        raise ValueError(x)
                    return x * 2
                finally:
                    print("finally", x)
                    if x % 2 == 0:
                        return -x


            def $name(a):
                out = []
                for x in (a % 5, $k + 1, $k + 2):
                    try:
                        out.append(${name}_swallow(x))
                    except ValueError as error:
                        out.append(-1000 - error.args[0])
                for i in range(4):
                    try:
                        if i == a % 3:
                            raise KeyError(i)
                        out.append(i)
                    finally:
                        if i == a % 3:
                            break
                print("swallow", out)
                return sum(out) % $mod
            ''', name=name, k=k, mod=MODULUS)
        self.feature(name, 1, 25)
