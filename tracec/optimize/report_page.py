"""The page `tracec report` writes for one optimize run: self-contained HTML (inline SVG and CSS, no script,
nothing fetched) made from the run's folder alone: the best score against metric calls and against cost,
the candidate tree (parent to child, kept or rejected and why), the per-example Pareto front of the pool,
and the diff from the baseline to the best, as the run's patches hold it. Every piece of recorded text
(values, reasons, diffs) is user or model data and goes through `html.escape`."""

from __future__ import annotations

import html
import json
from pathlib import Path

from tracec.optimize.pool import Candidate, Pool

CHART_W, CHART_H, PAD = 420, 200, 36
STATUS = {"member": ("#2e7d32", "kept in the pool"), "rejected": ("#9e9e9e", "rejected"),
          "failed": ("#d32f2f", "failed"), "new": ("#bdbdbd", "not decided: the run stopped")}

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.meta{color:#555} .charts{display:flex;gap:24px;flex-wrap:wrap}
svg text{font:11px system-ui,sans-serif;fill:#444} .curve{fill:none;stroke:#1565c0;stroke-width:2}
.dot{fill:#1565c0} ul.tree{list-style:none;padding-left:18px;border-left:1px dotted #bbb;margin:2px 0}
ul.tree.root{border:0;padding:0} .node{margin:3px 0} .badge{display:inline-block;padding:0 6px;
border-radius:8px;color:#fff;font-size:12px;margin-right:6px} code{background:#f4f4f4;padding:0 3px}
.reason{color:#666} table{border-collapse:collapse} td,th{border:1px solid #ddd;padding:3px 8px;
text-align:right} td.top{background:#e8f5e9;font-weight:600} pre.diff{background:#fafafa;
border:1px solid #ddd;padding:10px;overflow:auto} .add{color:#1b5e20;background:#e8f5e9}
.del{color:#b71c1c;background:#ffebee} .hunk{color:#6a1b9a}
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def chart(points: list[tuple[float, float]], x_label: str, title: str) -> str:
    """A step curve of the best score (y, 0..max) over what was spent (x)."""
    if not points:
        return f"<p>{_e(title)}: no data</p>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_max, y_max = max(max(xs), 1e-9), max(max(ys), 1.0)

    def at(x: float, y: float) -> str:
        return (f"{PAD + x / x_max * (CHART_W - 2 * PAD):.1f},"
                f"{CHART_H - PAD - y / y_max * (CHART_H - 2 * PAD):.1f}")

    path, previous = [], None
    for x, y in points:
        if previous is not None:
            path.append(at(x, previous))
        path.append(at(x, y))
        previous = y
    dots = "".join(f'<circle class="dot" r="3" cx="{at(x, y).split(",")[0]}" cy="{at(x, y).split(",")[1]}">'
                   f"<title>{_e(f'{x:g}: {y:.3f}')}</title></circle>" for x, y in points)
    axes = (f'<line x1="{PAD}" y1="{CHART_H - PAD}" x2="{CHART_W - PAD}" y2="{CHART_H - PAD}" stroke="#888"/>'
            f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{CHART_H - PAD}" stroke="#888"/>'
            f'<text x="{PAD}" y="{CHART_H - PAD + 14}">0</text>'
            f'<text x="{CHART_W - PAD}" y="{CHART_H - PAD + 14}" text-anchor="end">{_e(f"{x_max:g}")}</text>'
            f'<text x="{CHART_W / 2}" y="{CHART_H - 6}" text-anchor="middle">{_e(x_label)}</text>'
            f'<text x="{PAD - 4}" y="{PAD + 4}" text-anchor="end">{y_max:g}</text>'
            f'<text x="{PAD - 4}" y="{CHART_H - PAD}" text-anchor="end">0</text>')
    return (f'<figure><figcaption>{_e(title)}</figcaption><svg width="{CHART_W}" height="{CHART_H}" '
            f'role="img" aria-label="{_e(title)}">{axes}<polyline class="curve" points="{" ".join(path)}"/>'
            f"{dots}</svg></figure>")


def _change(candidate: Candidate, parent: Candidate | None, names: dict) -> str:
    before = parent.values if parent else {}
    changed = {k: v for k, v in candidate.values.items() if before.get(k, object()) != v}
    if not changed:
        return "the source as it was"
    return ", ".join(f"<code>{_e(names.get(k, k))} = {_e(_short(v))}</code>" for k, v in sorted(changed.items()))


def _short(value, limit: int = 80) -> str:
    text = repr(value) if not isinstance(value, str) or "\n" not in value else value.splitlines()[0] + " ..."
    return text if len(text) <= limit else text[:limit - 3] + "..."


def tree(pool: Pool, names: dict, best_id: int) -> str:
    children: dict[int, list[Candidate]] = {}
    for c in pool.candidates:
        if c.parents:
            children.setdefault(c.parents[0], []).append(c)

    def node(c: Candidate) -> str:
        colour, label = STATUS.get(c.status, ("#757575", c.status))
        parent = pool.candidates[c.parents[0]] if c.parents else None
        origin = f"merge of #{c.parents[0]} and #{c.parents[1]}" if c.origin == "merge" else c.origin
        score = f"val {c.mean:.3f}" if c.val_scores else (
            f"minibatch {c.minibatch[1]:g} vs parent {c.minibatch[0]:g}" if c.minibatch else "not scored")
        star = " ★ best" if c.id == best_id else ""
        reason = f' <span class="reason">— {_e(c.reason)}</span>' if c.reason else ""
        inner = "".join(node(k) for k in children.get(c.id, []))
        return (f'<li class="node" id="candidate-{c.id}"><span class="badge" style="background:{colour}">'
                f"{_e(label)}</span><b>#{c.id}</b> {_e(origin)}, step {c.step}: {_change(c, parent, names)} — "
                f"{_e(score)}{_e(star)}{reason}" + (f'<ul class="tree">{inner}</ul>' if inner else "") + "</li>")

    roots = [c for c in pool.candidates if not c.parents]
    return f'<ul class="tree root">{"".join(node(c) for c in roots)}</ul>'


def front_table(pool: Pool) -> str:
    if not pool.members:
        return "<p>no member</p>"
    front = pool.front()
    ids = sorted(front)
    winners = pool.winners()
    head = "".join(f'<th><a href="#candidate-{i}">#{i}</a><br>mean {pool.candidates[i].mean:.3f}</th>' for i in ids)
    rows = []
    for n, best_ids in enumerate(winners):
        cells = "".join(f'<td class="{"top" if i in best_ids else ""}">{pool.candidates[i].val_scores[n]:.3g}</td>'
                        for i in ids)
        rows.append(f"<tr><th>val {n}</th>{cells}</tr>")
    return (f"<p>{len(ids)} candidate(s) on the front; a shaded cell is the best score on that example.</p>"
            f"<table><tr><th>example</th>{head}</tr>{''.join(rows)}</table>")


def diff_block(text: str) -> str:
    lines = []
    for line in text.splitlines():
        kind = ("add" if line.startswith("+") and not line.startswith("+++") else
                "del" if line.startswith("-") and not line.startswith("---") else
                "hunk" if line.startswith("@@") else "")
        lines.append(f'<span class="{kind}">{_e(line)}</span>' if kind else _e(line))
    return '<pre class="diff">' + "\n".join(lines) + "</pre>"


def render(folder: Path, patches: list[tuple[str, str]]) -> str:
    """The page for the run in `folder` (.tracec/runs/ID); `patches`: (name, text) of the run's patches."""
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    pool = Pool([Candidate.from_json(c) for c in state.get("candidates", [])])
    names = {k: k.split(":", 1)[-1] for c in pool.candidates for k in c.values}
    history = state.get("history", [])
    by_calls = [(h[1], h[4]) for h in history]
    costly = any(h[3] for h in history)
    by_cost = [(h[3], h[4]) for h in history] if costly else [(h[2], h[4]) for h in history]
    cost_label = "cost (USD)" if costly else "LLM calls (every call was free: a local model)"
    baseline, best = state.get("baseline") or 0.0, state.get("best", 0.0)
    summary = (f"{_e(config.get('task', ''))} · model {_e(config.get('model', ''))} · search "
               f"{_e(config.get('search', 'greedy'))} · {state['step']} step(s) · {state.get('metric_calls', 0)} "
               f"metric calls · {state.get('llm_calls', 0)} LLM calls · ${state.get('cost_usd', 0.0):.4f}")
    diffs = "".join(f"<h3>{_e(name)}</h3>{diff_block(text)}" for name, text in patches) or \
        "<p>no patch: the best candidate is the baseline</p>"
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>tracec run {_e(folder.name)}</title><style>{CSS}</style></head><body>"
            f"<h1>tracec optimize run {_e(folder.name)}: {baseline:.3f} → {best:.3f}</h1>"
            f'<p class="meta">{summary}</p>'
            '<h2>Best score</h2><div class="charts">'
            f"{chart(by_calls, 'metric calls (example evaluations)', 'best val score against metric calls')}"
            f"{chart(by_cost, cost_label, 'best val score against ' + cost_label.split(' (')[0])}</div>"
            f"<h2>Candidates ({len(pool.candidates)})</h2>{tree(pool, names, state.get('best_id', 0))}"
            f"<h2>Per-example Pareto front</h2>{front_table(pool)}"
            f"<h2>Diff: baseline → best</h2>{diffs}</body></html>")
