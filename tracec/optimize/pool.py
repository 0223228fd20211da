"""The candidate pool of a search: every candidate tried, with its lineage and its score on each `val`
example, and the decisions made from them: the per-example Pareto front, the parent drawn from it, and
the merge of two members that win on different examples.

A candidate's `values` are the values it changes from the source (key -> literal or function source), as
`RunState.best_values` holds them, so any member can be written as a patch."""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass, field
from statistics import fmean, pstdev


@dataclass
class Candidate:
    id: int
    values: dict                           # key -> value, only where it differs from the source
    parents: list = field(default_factory=list)   # [] the baseline, [p] a proposal, [a, b] a merge
    step: int = 0
    origin: str = "baseline"               # baseline | proposal | merge
    status: str = "member"                 # member (in the pool) | rejected | failed | new (the run stopped
                                           # before it was decided)
    reason: str = ""                       # why it was rejected or failed, as the model is told
    minibatch: list = field(default_factory=list)   # [parent's sum, its sum] on the examples that decided
    val_scores: list = field(default_factory=list)  # per `val` example, in order (members only)
    spread: float = 0.0                    # spread of the repeated evaluations (0 for one run per example)

    @property
    def mean(self) -> float:
        return fmean(self.val_scores) if self.val_scores else 0.0

    def to_json(self) -> dict:
        data = {k: v for k, v in vars(self).items() if k != "values"}
        return {**data, "values": values_to_json(self.values)}

    @classmethod
    def from_json(cls, data: dict) -> "Candidate":
        return cls(**{**data, "values": values_from_json(data["values"])})


def values_to_json(values: dict) -> dict[str, str]:
    """Values are literals (params) or source text (code), so repr / literal_eval round-trips them."""
    return {k: repr(v) for k, v in values.items()}


def values_from_json(data: dict[str, str]) -> dict:
    return {k: ast.literal_eval(v) for k, v in data.items()}


SOURCE = object()   # merge: a key left as the source has it


def spread_of(scores: list[float]) -> float:
    return pstdev(scores) if len(scores) > 1 else 0.0


class Pool:
    def __init__(self, candidates: list[Candidate]) -> None:
        self.candidates = candidates

    def add(self, **fields) -> Candidate:
        candidate = Candidate(id=len(self.candidates), **fields)
        self.candidates.append(candidate)
        return candidate

    @property
    def members(self) -> list[Candidate]:
        return [c for c in self.candidates if c.status == "member"]

    def best(self) -> Candidate:
        """The member with the highest mean; the earliest among equals (the baseline before a tie)."""
        return max(self.members, key=lambda c: (c.mean, -c.id))

    def tried(self, values: dict) -> Candidate | None:
        return next((c for c in self.candidates if c.values == values), None)

    # -- the per-example Pareto front -----------------------------------------------------------
    def winners(self) -> list[set[int]]:
        """For each `val` example, the members reaching the best score on it."""
        members = self.members
        count = len(members[0].val_scores)
        tops = [max(m.val_scores[i] for m in members) for i in range(count)]
        return [{m.id for m in members if m.val_scores[i] >= tops[i]} for i in range(count)]

    def front(self) -> dict[int, int]:
        """Member id -> how many examples it is best on, for the members best on some example and
        dominated by none (another member at least as good on every example, better on one)."""
        by_id = {c.id: c for c in self.members}
        wins: dict[int, int] = {}
        for ids in self.winners():
            for i in ids:
                wins[i] = wins.get(i, 0) + 1

        def dominated(a: Candidate) -> bool:
            return any(b.id != a.id and all(x >= y for x, y in zip(b.val_scores, a.val_scores))
                       and b.val_scores != a.val_scores for b in by_id.values())

        # equal score vectors dominate neither way: keep only the earliest of them
        front, seen = {}, set()
        for i in sorted(wins):
            vector = tuple(by_id[i].val_scores)
            if not dominated(by_id[i]) and vector not in seen:
                front[i], seen = wins[i], seen | {vector}
        return front

    def select_parent(self, rng: random.Random) -> Candidate:
        """A front member, drawn in proportion to the examples it is best on (GEPA's rule): a member that
        alone solves one hard example keeps being improved, not only the one with the best mean."""
        front = self.front()
        ids = sorted(front)
        (chosen,) = rng.choices(ids, weights=[front[i] for i in ids])
        return self.candidates[chosen]

    # -- merge ----------------------------------------------------------------------------------
    def ancestors(self, candidate: Candidate) -> set[int]:
        seen, todo = set(), list(candidate.parents)
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                todo.extend(self.candidates[i].parents)
        return seen

    def merge_pair(self, rng: random.Random) -> tuple[Candidate, Candidate, dict] | None:
        """Two front members that each win an example the other loses, neither descended from the other,
        and their merged values: each key from the one that changed it since their common ancestor (from
        the better one where both did). None when no such pair gives values not tried before."""
        front = sorted(self.front())
        pairs = [(a, b) for n, a in enumerate(front) for b in front[n + 1:]]
        rng.shuffle(pairs)
        for a_id, b_id in pairs:
            a, b = self.candidates[a_id], self.candidates[b_id]
            if a.id in self.ancestors(b) or b.id in self.ancestors(a):
                continue
            if not (any(x > y for x, y in zip(a.val_scores, b.val_scores))
                    and any(y > x for x, y in zip(a.val_scores, b.val_scores))):
                continue
            common = (self.ancestors(a) | {a.id}) & (self.ancestors(b) | {b.id})
            base = self.candidates[max(common)].values if common else {}
            better, other = (a, b) if (a.mean, -a.id) >= (b.mean, -b.id) else (b, a)
            merged = {}
            for key in sorted(a.values.keys() | b.values.keys() | base.keys()):
                mine, theirs, before = (c.get(key, SOURCE) for c in (better.values, other.values, base))
                value = theirs if mine == before else mine
                if value is not SOURCE:
                    merged[key] = value
            if merged not in (a.values, b.values) and self.tried(merged) is None:
                return a, b, merged
        return None
