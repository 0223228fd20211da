"""Feature templates: plain functions, recursion, generators, async. Each defines functions and registers one that main() calls."""

from __future__ import annotations

from .context import MODULUS, Ctx


class FunctionTemplates:
    """Plain functions, recursion, generators, async."""

    def t_plain(self) -> None:
        r = self.rng
        name = self.fresh("f")
        self.cost = 0
        decorators = r.choice([[], [], [], ["@logged"], ["@repeat(2)"], ["@logged", "@repeat(2)"],
                               ["@functools.lru_cache(maxsize=None)"]])
        signature = r.choice(["(a, b)", "(a, b=4)", "(a, *rest, b=2, **kw)", "(a: int, b: int = 3) -> int"])
        for decorator in decorators:
            self.out.add(decorator)
        with self.out.block(f"def {name}{signature}:"):
            if r.random() < 0.4:
                self.out.add(r.choice([f'"""Plain function {name}."""',
                                       f'"""Plain function {name}.\n\n    Returns an int.\n    """']))
            ctx = Ctx(vars=["a", "b"], func=name, returns=True, global_ok=r.random() < 0.3)
            if ctx.global_ok:
                self.out.add("global TOTAL")
            if "*rest" in signature:
                self.out.add("b += len(rest) + len(kw)")
            self.body(ctx, r.randint(2, 4) if self.small else r.randint(2, 6))
            self.out.add(f"return ({self.expr(ctx)}) % {MODULUS}")
        self.out.add("\n")
        times = 2 if "@repeat(2)" in decorators else 1
        self.feature(name, 2, (self.cost + 1) * times)
        if r.random() < 0.5:
            self.introspect.append(name)

    def t_recursion(self) -> None:
        r = self.rng
        kind, name = r.randint(0, 2), self.fresh("rec")
        if kind == 0:
            limit = r.randint(4, 8)
            self.emit('''
                def $name(n, acc=0):
                    """Recurses at most $limit levels."""
                    if n > $limit:
                        return $name(n % $limit, acc)
                    if n <= 0:
                        return acc % $mod
                    if n % $k == 0: acc -= n
                    return $name(n - 1, acc + n * $k)
                ''', name=name, limit=limit, k=r.randint(2, 5), mod=MODULUS)
            self.feature(name, 1, limit + 2)
        elif kind == 1:
            self.emit('''
                def ${name}_even(n):
                    if n == 0:
                        return True
                    return ${name}_odd(n - 1)


                def ${name}_odd(n):
                    return False if n == 0 else ${name}_even(n - 1)


                def $name(n):
                    n = abs(n) % $limit
                    return 1 if ${name}_even(n) else 0
                ''', name=name, limit=r.randint(5, 15))
            self.feature(name, 1, 16)
        else:
            cache = "@functools.lru_cache(maxsize=None)\n" if r.random() < 0.3 else ""
            self.emit('''
                ${cache}def ${name}_fib(n):
                    return n if n < 2 else ${name}_fib(n - 1) + ${name}_fib(n - 2)


                def $name(n):
                    return ${name}_fib(abs(n) % 9)
                ''', name=name, cache=cache)
            self.feature(name, 1, 60)

    def t_generator(self) -> None:
        r = self.rng
        name = self.fresh("gen")
        k = r.randint(2, 3)
        self.emit('''
            def ${name}_source(limit):
                total = 0
                for i in range(limit):
                    if i % $k == $j:
                        continue
                    got = yield i * $m + total
                    if got is not None:
                        total += got
                    if total > $cap:
                        break
                else:
                    total -= 1
                return total


            def ${name}_relay(limit):
                result = yield from ${name}_source(limit)
                yield -result


            def ${name}_guarded():
                seen = []
                while True:
                    try:
                        value = yield len(seen)
                    except ValueError as error:
                        seen.append(-len(error.args))
                        continue
                    if value is None:
                        return seen
                    seen.append(value)


            def $name(a):
                g = ${name}_source(abs(a) % 4 + 3)
                first = next(g)
                try:
                    second = g.send(a % 5)
                except StopIteration as stop:
                    second = stop.value
                rest = list(g)
                relayed = list(${name}_relay(abs(a) % 5))
                squares = (x * x for x in relayed if x)
                guard = ${name}_guarded()
                next(guard)
                guard.send(a % 7)
                thrown = guard.throw(ValueError("in", a))
                try:
                    guard.send(None)
                except StopIteration as stop:
                    print("guarded", thrown, stop.value)
                guard.close()
                print("gen", first, second, rest, relayed, sum(squares))
                return (first + second + sum(rest)) % $mod
            ''', name=name, k=k, j=r.randint(0, k - 1), m=r.randint(1, 3), cap=r.randint(5, 30), mod=MODULUS)
        self.feature(name, 1, 40)

    def t_async(self) -> None:
        r = self.rng
        name = self.fresh("aio")
        self.emit('''
            class ${name}_Gate:
                async def __aenter__(self):
                    print("gate open")
                    await asyncio.sleep(0)
                    return self

                async def __aexit__(self, kind, value, tb):
                    print("gate close", kind is not None)
                    return False


            async def ${name}_work(i, steps):
                for s in range(steps):
                    await asyncio.sleep(0)
                    print("work", i, s)
                if i == $bad:
                    raise ValueError(i)
                return i * $k


            async def ${name}_ticks(n):
                for i in range(n):
                    await asyncio.sleep(0)
                    yield i


            async def ${name}_main(n):
                results = await asyncio.gather(*(${name}_work(i, (i * 7 + 1) % 3) for i in range(n)),
                                               return_exceptions=True)
                seen = [x async for x in ${name}_ticks(n) if x != 1]
                async with ${name}_Gate() as gate:
                    task = asyncio.create_task(${name}_work(9, 1))
                    other = await ${name}_work(8, 2)
                    done = await task
                try:
                    await ${name}_work($bad, 1)
                except ValueError as error:
                    print("async caught", error.args)
                return [r if isinstance(r, int) else type(r).__name__ for r in results], seen, other + done


            def $name(a):
                results, seen, extra = asyncio.run(${name}_main(abs(a) % 3 + 2))
                print("async", results, seen, extra)
                return (len(results) + sum(seen) + extra) % $mod
            ''', name=name, bad=r.randint(-1, 3), k=r.randint(2, 5), mod=MODULUS)
        self.feature(name, 1, 80)
