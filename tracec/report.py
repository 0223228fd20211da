"""What `tracec optimize` shows: a progress bar on stderr while it runs, a summary table on stdout."""

from __future__ import annotations

import contextlib
import os

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


@contextlib.contextmanager
def progress_reporter(console: Console, steps: int, done: int):
    """Yields `report(step, message, best)`; each step also gets one log line (kept in CI logs)."""
    columns = (TextColumn("optimizing"), BarColumn(), MofNCompleteColumn(), TextColumn("best {task.fields[best]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("steps", total=steps, completed=done, best="-")

        def report(step: int, message: str, best: float) -> None:
            progress.update(bar, completed=step, best=f"{best:.3f}")
            progress.console.print(f"step {step}/{steps}: {message}", highlight=False, markup=False)

        yield report


def print_summary(result, optimizer, client, root) -> None:
    console = Console(highlight=False, soft_wrap=True)
    from .prompt import display_names

    names = display_names(optimizer.targets)
    cost = f"{client.prompt_tokens} + {client.completion_tokens} tokens, ${client.cost_usd:.4f}"
    if client.cache_hits:
        cost += f" ({client.cache_hits} cached)"
    patch_for = {key: p for p in result.patches for key in p.keys}
    table = Table(title=f"tracec optimize run {optimizer.store.run_id}", title_justify="left")
    for column in ("parameter", "score (old -> new)", "patch", "LLM"):
        table.add_column(column, overflow="fold")
    for key in sorted(result.changed):
        patch = patch_for.get(key)
        table.add_row(names.get(key, key), f"{result.baseline:.3f} -> {result.best:.3f}",
                      os.path.relpath(patch.path, root) if patch else "(not written)", cost)
    if result.changed:
        console.print(table)
    else:
        console.print(f"no improvement: best score {result.best:.3f} = baseline {result.baseline:.3f} after "
                      f"{optimizer.state.step} step(s); no patch written ({cost}, {client.calls} call(s))")
    if result.stopped:
        console.print(f"stopped early: {result.stopped}; continue with `tracec optimize "
                      f"{os.path.relpath(optimizer.task.path)} --resume {optimizer.store.run_id}`")
    if result.patches:
        console.print("review the patch(es), then `tracec apply` (or `git apply PATCH`)")
