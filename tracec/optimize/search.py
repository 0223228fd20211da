"""How a step searches (`--search`). Both record a minibatch, send its feedback backward and ask the
model for new values (Optimizer.propose); they differ in what they build on and what they pay for:

- `pareto` (the default): a pool of candidates with lineage. The parent is drawn from the per-example
  Pareto front (pool.py); `--proposals K` children are asked for at once and each is scored on the
  parent's minibatch first; only a child that beats its parent there is paid a full `val` evaluation and
  joins the pool. After a step that added a member, two members winning different examples are merged.
- `greedy`: one proposal on top of the best candidate, every one validated on all of `val`, kept if the
  mean rises (the loop before the pool, kept for comparison).

With `repeats` R > 1 (a stochastic task) every example is run R times and its score is their mean; a
child must beat its parent by more than the noise measured, and a new best is re-evaluated on `val`
before it replaces the old one, so no decision rests on one lucky run."""

from __future__ import annotations

import dataclasses
import math
import random
from statistics import fmean

from tracec.optimize.candidates import TrialError
from tracec.optimize.pool import Candidate, Pool, spread_of

MAX_MERGES = 5   # merges per run, as GEPA's default: each costs metric calls but no LLM call


class Search:
    def __init__(self, optimizer) -> None:
        self.opt = optimizer
        self.state = optimizer.state
        self.pool = Pool(self.state.candidates)

    # -- evaluation, counted and repeated ------------------------------------------------------------
    def scores(self, values: dict, examples: list, purpose: str) -> tuple[list[float], float]:
        """Per-example scores of `values` (each the mean of `repeats` runs) and their spread; the runs are
        counted against --max-metric-calls before they start. TrialError rejects the candidate."""
        self.opt.spend_metric_calls(len(examples) * self.opt.repeats, purpose)
        return self.measure(values, examples)

    def measure(self, values: dict, examples: list) -> tuple[list[float], float]:
        """scores() without counting: for evaluations already paid for (safe from several threads)."""
        if not examples:
            return [], 0.0
        runs = self.runs(values, examples, self.opt.repeats)
        return [fmean(r) for r in runs], fmean(spread_of(r) for r in runs)

    def runs(self, values: dict, examples: list, count: int) -> list[list[float]]:
        """The scores of `count` runs of each example, grouped per example (one evaluation for them all)."""
        flat = self.opt.evaluator.scores(values, list(examples) * count)
        return [flat[i::len(examples)] for i in range(len(examples))]

    def record(self, values: dict, batch: list) -> list:
        """Outcomes (with graphs) of one recorded run per example; with repeats, the score each shows is
        the mean of its runs, so the prompt and the acceptance test see the same numbers."""
        self.opt.spend_metric_calls(len(batch), "recording the minibatch")
        outcomes = self.opt.evaluator.record(batch, values)
        if self.opt.repeats > 1:
            self.opt.spend_metric_calls(len(batch) * (self.opt.repeats - 1), "repeating the minibatch")
            try:
                more = self.runs(values, batch, self.opt.repeats - 1)
            except TrialError:
                more = [[] for _ in batch]
            outcomes = [dataclasses.replace(o, score=fmean([o.score, *runs])) for o, runs in zip(outcomes, more)]
        return outcomes

    def beats(self, child: list[float], parent: list[float], noise: float) -> bool:
        """The child's sum is higher by more than the noise of both (one standard error of the sum's
        difference; 0 for a deterministic task)."""
        margin = noise * math.sqrt(2 * len(child) / self.opt.repeats) if self.opt.repeats > 1 else 0.0
        return sum(child) > sum(parent) + margin

    def validate(self, candidate: Candidate, known: dict[int, float] | None = None) -> bool:
        """Score a candidate on `val` (reusing scores already `known` per val index); False if it failed."""
        val = self.opt.evaluator.val
        known = known or {}
        rest = [i for i in range(len(val)) if i not in known]
        try:
            scores, candidate.spread = self.scores(candidate.values, [val[i] for i in rest], "validating the candidate")
        except TrialError as exc:
            candidate.status, candidate.reason = "failed", str(exc)
            return False
        by_index = {**known, **dict(zip(rest, scores))}
        candidate.val_scores = [by_index[i] for i in range(len(val))]
        return True

    def confirm_best(self, candidate: Candidate, best: float) -> bool:
        """With repeats, a candidate that looks best is scored on `val` once more and kept as best only if
        the mean of both evaluations still beats `best`."""
        if self.opt.repeats == 1:
            return candidate.mean > best
        if candidate.mean <= best:
            return False
        try:
            again, _ = self.scores(candidate.values, list(self.opt.evaluator.val), "re-evaluating the best")
        except TrialError:
            return False
        candidate.val_scores = [(a + b) / 2 for a, b in zip(candidate.val_scores, again)]
        return candidate.mean > best

    def set_best(self, candidate: Candidate) -> None:
        self.state.best_id, self.state.best_values, self.state.best = candidate.id, dict(candidate.values), candidate.mean

    def step_rng(self, index: int) -> random.Random:
        """The step's random choices, from the seed and the step alone: a resumed run makes the same ones."""
        return random.Random(self.opt.config.seed * 1_000_003 + index)

    def child_values(self, parent: Candidate, changed: dict) -> dict:
        initial = self.opt.initial
        values = {**parent.values, **changed}
        return {k: v for k, v in values.items() if k not in initial or v != initial[k]}

    def label(self, changed: dict) -> str:
        return ", ".join(f"{self.opt.names[k]}={self.opt.preview(v, 60)}" for k, v in changed.items())


class GreedySearch(Search):
    def step(self, index: int) -> str:
        parent = self.pool.candidates[self.state.best_id]
        rng = self.step_rng(index)
        batch = self.opt.evaluator.batch(rng, self.opt.config.batch_size, parent.values)
        outcomes = self.record(parent.values, batch)
        if all(o.score >= 1.0 for o in outcomes) and self.state.best >= 1.0:
            return "every example scores 1.0: nothing to improve"
        proposals = self.opt.propose(index, outcomes, parent.values, 1)
        if isinstance(proposals, str):
            return proposals
        (changed,) = proposals
        child = self.pool.add(values=self.child_values(parent, changed), parents=[parent.id], step=index,
                              origin="proposal", status="new")
        label = self.label(changed)
        if not self.validate(child):
            self.opt.remember(f"step {index}: {label} could not be tried: {child.reason}")
            return f"candidate rejected: {child.reason}"
        kept = self.confirm_best(child, self.state.best)
        was = self.state.best
        if kept:
            child.status = "member"
            self.set_best(child)
        else:
            child.status, child.reason = "rejected", f"val {child.mean:.3f}, not above the best {was:.3f}"
        self.opt.remember(f"step {index}: tried {label}: score {child.mean:.3f} "
                          f"({'kept' if kept else 'worse or equal, rolled back'}; best was {was:.3f})")
        return f"tried {label}: {child.mean:.3f} ({'kept' if kept else 'rolled back'})"


class ParetoSearch(Search):
    def step(self, index: int) -> str:
        rng = self.step_rng(index)
        if self.state.merge_due and self.state.merges < MAX_MERGES:
            self.state.merge_due = False
            message = self.merge(index, rng)
            if message:
                return message
        parent = self.pool.select_parent(rng)
        batch = self.opt.evaluator.batch(rng, self.opt.config.batch_size, parent.values)
        outcomes = self.record(parent.values, batch)
        if all(o.score >= 1.0 for o in outcomes):
            return f"candidate {parent.id} scores 1.0 on every example of the minibatch: nothing to improve there"
        proposals = self.opt.propose(index, outcomes, parent.values, self.opt.config.proposals)
        if isinstance(proposals, str):
            return proposals
        before = [o.score for o in outcomes]
        children: list[tuple[Candidate, dict]] = []
        for changed in proposals:
            values = self.child_values(parent, changed)
            if values != parent.values and all(c.values != values for c, _ in children):
                child = self.pool.add(values=values, parents=[parent.id], step=index, origin="proposal", status="new")
                children.append((child, changed))
        gated, stop = self.on_minibatch([c for c, _ in children], batch)
        results = [self.try_child(index, child, batch, before, self.label(changed), gated[child.id])
                   for child, changed in children if child.id in gated]
        if stop is not None:   # a budget ran out before the remaining children could be scored
            raise stop
        return f"parent {parent.id}: " + "; ".join(results)

    def on_minibatch(self, children: list[Candidate], batch: list) -> tuple[dict, BaseException | None]:
        """Each child's (scores, noise) on the minibatch, or the TrialError that rejected it. Children are
        scored at once as far as the workers allow (each evaluation spreads its examples over up to
        `parallel` of them), all paid for first, in order: the budget stops at the first one it cannot pay."""
        from concurrent.futures import ThreadPoolExecutor

        from tracec.llm.common import BudgetExceeded

        paid, stop = [], None
        for child in children:
            try:
                self.opt.spend_metric_calls(len(batch) * self.opt.repeats, "scoring a child on the minibatch")
            except BudgetExceeded as exc:
                stop = exc
                break
            paid.append(child)

        def measured(child: Candidate):
            try:
                return self.measure(child.values, batch)
            except TrialError as exc:
                return exc

        parallel = self.opt.evaluator.parallel
        at_once = max(1, parallel // max(1, min(parallel, len(batch))))
        if at_once == 1 or len(paid) == 1:
            return {c.id: measured(c) for c in paid}, stop
        with ThreadPoolExecutor(max_workers=min(at_once, len(paid)), thread_name_prefix="tracec-child") as threads:
            return dict(zip((c.id for c in paid), threads.map(measured, paid))), stop

    def try_child(self, index: int, child: Candidate, batch: list, before: list[float], label: str,
                  gated) -> str:
        if isinstance(gated, TrialError):
            child.status, child.reason = "failed", str(gated)
            self.opt.remember(f"step {index}: {label} could not be tried: {gated}")
            return f"candidate {child.id} rejected: {gated}"
        after, noise = gated
        child.minibatch = [sum(before), sum(after)]
        if not self.beats(after, before, noise):
            child.status = "rejected"
            child.reason = f"minibatch {sum(after):.3g} of {len(batch)}, not above its parent's {sum(before):.3g}"
            if self.opt.repeats > 1 and noise:
                child.reason += f" by more than the noise (runs spread ±{noise:.2f})"
            self.opt.remember(f"step {index}: tried {label}: {child.reason}; rolled back")
            return f"candidate {child.id} ({label}): {child.reason}"
        if not self.validate(child):
            self.opt.remember(f"step {index}: {label} could not be validated: {child.reason}")
            return f"candidate {child.id} rejected: {child.reason}"
        self.join(child)
        self.opt.remember(f"step {index}: tried {label}: minibatch {sum(before):g} -> {sum(after):g}, "
                          f"val {child.mean:.3f} (best {self.state.best:.3f}); kept in the pool")
        return f"candidate {child.id} ({label}): val {child.mean:.3f}, joins the pool"

    def join(self, child: Candidate) -> None:
        child.status = "member"
        self.state.merge_due = True
        if self.confirm_best(child, self.state.best):
            self.set_best(child)

    def merge(self, index: int, rng: random.Random) -> str:
        pair = self.pool.merge_pair(rng)
        if pair is None:
            return ""
        a, b, values = pair
        self.state.merges += 1
        child = self.pool.add(values=values, parents=[a.id, b.id], step=index, origin="merge", status="new")
        val = self.opt.evaluator.val
        # decide on the val examples where the two differ most: there the merge must do as well as either
        order = sorted(range(len(val)), key=lambda i: (-abs(a.val_scores[i] - b.val_scores[i]), rng.random()))
        sample = sorted(order[:self.opt.config.batch_size])
        try:
            scores, noise = self.scores(values, [val[i] for i in sample], "scoring a merge")
        except TrialError as exc:
            child.status, child.reason = "failed", str(exc)
            return f"merge of {a.id} and {b.id} rejected: {exc}"
        best_parent = max(sum(a.val_scores[i] for i in sample), sum(b.val_scores[i] for i in sample))
        child.minibatch = [best_parent, sum(scores)]
        if sum(scores) < best_parent:
            child.status = "rejected"
            child.reason = f"{sum(scores):g} on {len(sample)} val examples, below its parents' {best_parent:g}"
            return f"merge of {a.id} and {b.id}: {child.reason}"
        if not self.validate(child, dict(zip(sample, scores))):
            return f"merge of {a.id} and {b.id} rejected: {child.reason}"
        self.join(child)
        self.opt.remember(f"step {index}: merged candidates {a.id} and {b.id}: val {child.mean:.3f}")
        return f"merge of {a.id} and {b.id} (candidate {child.id}): val {child.mean:.3f}, joins the pool"


SEARCHES = {"pareto": ParetoSearch, "greedy": GreedySearch}
