"""What a `tracec optimize` run keeps on disk in `.tracec/runs/<id>/`, so `--resume <id>` continues it:
config.json (settings), state.json (step, best values and scores, memory), files.json (hashes of the
sources it started from), calls/step-NNN-A.json (every prompt and reply, for review)."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from tracec.fileio import write_atomic
from tracec.optimize.config import OptimizeConfig
from tracec.optimize.pool import Candidate, values_from_json, values_to_json
from tracec.patches.patch_file import sha256_text as sha256


@dataclass
class RunState:
    step: int = 0                                  # steps finished
    baseline: float | None = None                  # score before any change
    best: float = 0.0
    best_values: dict = field(default_factory=dict)   # key -> value / def source of the best candidate
    memory: list = field(default_factory=list)     # one line per step, shown to the optimizer
    log: list = field(default_factory=list)        # one line per step, shown to the user
    candidates: list = field(default_factory=list)   # pool.Candidate: every candidate tried, with lineage
    best_id: int = 0                               # the candidate whose values are best_values
    merges: int = 0                                # merges tried (search.MAX_MERGES)
    merge_due: bool = False                        # a step added a pool member: the next one tries a merge
    cost_usd: float = 0.0                          # what the model calls cost, over every process of the run
    history: list = field(default_factory=list)    # [step, metric calls, LLM calls, cost, best] after each step
    metric_calls: int = 0                          # example evaluations spent (--max-metric-calls)
    llm_calls: int = 0                             # model calls spent, cached replies not counted

    def to_json(self) -> dict:
        return {"step": self.step, "baseline": self.baseline, "best": self.best, "memory": self.memory,
                "log": self.log, "metric_calls": self.metric_calls, "llm_calls": self.llm_calls,
                "best_values": values_to_json(self.best_values),
                "candidates": [c.to_json() for c in self.candidates], "best_id": self.best_id,
                "merges": self.merges, "merge_due": self.merge_due, "cost_usd": self.cost_usd,
                "history": self.history}

    @classmethod
    def from_json(cls, data: dict) -> "RunState":
        values = values_from_json(data.get("best_values", {}))
        candidates = [Candidate.from_json(c) for c in data.get("candidates", [])]
        return cls(step=data["step"], baseline=data["baseline"], best=data["best"], best_values=values,
                   memory=data["memory"], log=data.get("log", []), candidates=candidates,
                   best_id=data.get("best_id", 0), merges=data.get("merges", 0),
                   merge_due=data.get("merge_due", False), cost_usd=data.get("cost_usd", 0.0),
                   history=data.get("history", []), metric_calls=data.get("metric_calls", 0),
                   llm_calls=data.get("llm_calls", 0))


def write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=1, default=str))


class RunStore:
    def __init__(self, root: Path, run_id: str, config: OptimizeConfig, state: RunState) -> None:
        self.root, self.run_id, self.config, self.state = root, run_id, config, state
        self.folder = root / ".tracec" / "runs" / run_id

    @classmethod
    def create(cls, root: Path, config: OptimizeConfig, task: Path) -> "RunStore":
        base = time.strftime("%Y%m%d-%H%M%S")
        run_id, n = base, 1
        while (root / ".tracec" / "runs" / run_id).exists():
            n += 1
            run_id = f"{base}-{n}"
        store = cls(root, run_id, config, RunState())
        write_json(store.folder / "config.json", {**dataclasses.asdict(config), "task": str(task)})
        store.save()
        return store

    @classmethod
    def open(cls, root: Path, run_id: str) -> "RunStore":
        if not run_id.strip():   # `--resume ""`, e.g. from an unset shell variable: not a new run
            raise ValueError("--resume needs a RUN_ID, one of the folders in "
                             f"{root / '.tracec' / 'runs'} (the run id printed by `tracec optimize`)")
        folder = root / ".tracec" / "runs" / run_id
        if any(c in run_id for c in "/\\\0") or run_id in (".", "..") or not (folder / "state.json").is_file():
            raise ValueError(f"no run {run_id!r} in {root / '.tracec' / 'runs'} (see the run id printed by "
                             "`tracec optimize`)")
        config = json.loads((folder / "config.json").read_text())
        config.pop("task", None)
        state = RunState.from_json(json.loads((folder / "state.json").read_text()))
        return cls(root, run_id, OptimizeConfig(**config), state)

    def config_with(self, flags: dict) -> OptimizeConfig:
        """A resumed run keeps its settings; flags given again (e.g. more --steps) override them."""
        given = {k: v for k, v in flags.items() if v is not None}
        self.config = dataclasses.replace(self.config, **given)
        write_json(self.folder / "config.json", dataclasses.asdict(self.config))
        return self.config

    def check_files(self, originals: dict[str, str]) -> None:
        """A new run records its sources' hashes; a resumed one refuses if they changed since."""
        hashes = {f: sha256(text) for f, text in sorted(originals.items())}
        path = self.folder / "files.json"
        if path.is_file():
            before = json.loads(path.read_text())
            changed = sorted(f for f in before if before[f] != hashes.get(f))
            if changed:
                raise ValueError(f"{changed[0]} changed since run {self.run_id} started; start a new run "
                                 "instead of --resume")
        write_json(path, hashes)

    @property
    def patch_summary(self) -> str:
        """How every patch this run writes begins its summary: how `tracec report` and a resumed run find them."""
        return f"tracec optimize run {self.run_id}:"

    def save(self) -> None:
        write_json(self.folder / "state.json", self.state.to_json())

    def save_call(self, step: int, attempt: int, messages, reply, accepted, problems, proposal: int = 0) -> None:
        """`reply` None: the reply could not be kept (see the problems). JSON escapes every non-ASCII
        character, so a lone surrogate in a reply is logged as its escape, never a crash. The first
        proposal of a step is calls/step-NNN-A.json, proposal P > 0 calls/step-NNN-pP-A.json."""
        details = {} if reply is None else {
            "reply": reply.text, "prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "cost_usd": reply.cost_usd, "cached": reply.cached}
        name = f"step-{step:03d}-{attempt}" if proposal == 0 else f"step-{step:03d}-p{proposal}-{attempt}"
        write_json(self.folder / "calls" / f"{name}.json",
                   {"messages": messages, "reply": None, **details, "accepted": list(accepted),
                    "problems": list(problems)})
