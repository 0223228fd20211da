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
               TextColumn("{task.fields[spent]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("steps", total=steps, completed=done, best="-", spent="")

        def report(step: int, message: str, best: float, spent: str = "") -> None:
            progress.update(bar, completed=step, best=f"{best:.3f}", spent=spent)
            progress.console.print(f"step {step}/{steps}: {message}", highlight=False, markup=False)

        yield report


def print_summary(result, optimizer, client, root) -> None:
    names = optimizer.names
    patch_for = {key: os.path.relpath(p.path, root) for p in result.patches for key in p.keys}
    rows = [(names.get(key, key), f"{result.baseline:.3f} -> {result.best:.3f}", patch_for.get(key, "(not written)"))
            for key in sorted(result.changed)]
    # wide enough for whole patch paths even when stdout is a pipe (rich assumes 80 columns there)
    headers = ("parameter", "score (old -> new)", "patch")
    width = max(80, sum(max(len(h), *(len(r[i]) for r in rows)) + 3 for i, h in enumerate(headers)) + 1) \
        if rows else 80
    # markup=False: names, paths, the model and its error text are shown as they are ("[/bold]" in a
    # server's error message is not rich markup, and would make rich raise)
    console = Console(highlight=False, soft_wrap=True, width=width, markup=False)
    llm = (f"LLM: {client.calls} call(s), {client.prompt_tokens} prompt + {client.completion_tokens} completion "
           f"tokens, ${client.cost_usd:.4f} ({optimizer.config.model})")
    if client.cache_hits:
        llm += f"; {client.cache_hits} reply(ies) from the cache"
    llm += "\n" + _budgets(optimizer, client)
    if rows:
        table = Table(title=f"tracec optimize run {optimizer.store.run_id}", title_justify="left",
                      caption=llm, caption_justify="left")
        for column in headers:
            table.add_column(column, no_wrap=True)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    else:
        console.print(f"no improvement: best score {result.best:.3f} = baseline {result.baseline:.3f} after "
                      f"{optimizer.state.step} step(s); no patch written")
        console.print(llm)
    if result.stopped:
        console.print(f"stopped early: {result.stopped}; continue with `tracec optimize "
                      f"{optimizer.evaluator.resume_args} --resume {optimizer.store.run_id}`")
    if result.patches:
        console.print("review the patch(es), then `tracec apply` (or `git apply PATCH`)")


def _budgets(optimizer, client) -> str:
    """One line: each budget spent and left (spent only where none was set), over the whole run."""
    state, config = optimizer.state, optimizer.config

    def line(name: str, spent, limit, unit: str = "") -> str:
        if limit is None:
            return f"{name} {unit}{spent}"
        return f"{name} {unit}{spent} of {unit}{limit} ({unit}{limit - spent:.4g} left)" if unit else \
            f"{name} {spent} of {limit} ({limit - spent} left)"

    parts = [line("steps", state.step, config.steps),
             line("metric calls", state.metric_calls, config.max_metric_calls),
             line("LLM calls", state.llm_calls, config.max_llm_calls)]
    if config.budget_usd is not None:
        parts.append(line("cost", round(state.cost_usd, 4), config.budget_usd, "$"))
    return "spent: " + ", ".join(parts)
