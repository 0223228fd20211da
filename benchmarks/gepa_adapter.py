"""GEPA (`gepa` 0.1.4 on PyPI) driven on a tracec task through the same workers tracec's own search uses:
a `GEPAAdapter` whose `evaluate` is TaskEvaluator.scores / .record (the candidate as patched files in a
fresh fork, scored by the task's own feedback), and whose reflective dataset is each example's input,
output and feedback text. GEPA's candidates are text: a string param is its own text, any other literal
its repr (read back with ast.literal_eval; text that is no literal scores 0 with that reason), a
trainable function its source."""

from __future__ import annotations

import ast
from statistics import fmean


class TracecTaskAdapter:
    """GEPA's adapter protocol (evaluate, make_reflective_dataset) over a tracec TaskEvaluator."""

    propose_new_texts = None   # GEPA's own reflective proposer writes the new texts

    def __init__(self, evaluator, repeats: int = 1) -> None:
        self.evaluator, self.repeats = evaluator, repeats
        self.names = {key: key.split(":", 1)[-1] for key in evaluator.targets}
        self.keys = {name: key for key, name in self.names.items()}

    # -- candidates as text -------------------------------------------------------------------------
    def seed_candidate(self) -> dict[str, str]:
        return {self.names[k]: v if isinstance(v, str) else repr(v) for k, v in self.evaluator.initial.items()
                if k in self.names}

    def values(self, candidate: dict[str, str]) -> dict:
        """The candidate as tracec values (changes from the source); ValueError names a text that is no literal."""
        values = {}
        for name, text in candidate.items():
            key = self.keys[name]
            initial = self.evaluator.initial.get(key)
            if self.evaluator.targets[key].kind == "code" or isinstance(initial, str):
                value = text
            else:
                try:
                    value = ast.literal_eval(text.strip())
                except (ValueError, SyntaxError) as exc:
                    raise ValueError(f"{name} must be a Python literal like {initial!r}, got {text[:80]!r}") from exc
            if value != initial:
                values[key] = value
        return values

    # -- the protocol -------------------------------------------------------------------------------
    def evaluate(self, batch, candidate, capture_traces=False):
        from gepa.core.adapter import EvaluationBatch

        from tracec.optimize.candidates import TrialError

        count = len(batch) * self.repeats
        try:
            values = self.values(candidate)
            if capture_traces:
                outcomes = self.evaluator.record(list(batch), values)
                scores = [o.score for o in outcomes]
                if self.repeats > 1:
                    extra = self.evaluator.scores(values, list(batch) * (self.repeats - 1))
                    scores = [fmean([s, *extra[i::len(batch)]]) for i, s in enumerate(scores)]
                traces = [{"input": o.example, "output": o.output, "feedback": o.text, "score": s}
                          for o, s in zip(outcomes, scores)]
                return EvaluationBatch(outputs=[o.output for o in outcomes], scores=scores, trajectories=traces,
                                       num_metric_calls=count)
            flat = self.evaluator.scores(values, list(batch) * self.repeats)
            scores = [fmean(flat[i::len(batch)]) for i in range(len(batch))]
            return EvaluationBatch(outputs=[None] * len(batch), scores=scores, num_metric_calls=count)
        except (ValueError, TrialError) as exc:   # a candidate that cannot run scores 0, with its reason
            traces = [{"input": str(b), "output": "(not run)", "feedback": str(exc), "score": 0.0} for b in batch]
            return EvaluationBatch(outputs=[None] * len(batch), scores=[0.0] * len(batch),
                                   trajectories=traces if capture_traces else None, num_metric_calls=count)

    def make_reflective_dataset(self, candidate, eval_batch, components_to_update):
        records = [{"Inputs": t["input"], "Generated Outputs": t["output"],
                    "Feedback": f"score {t['score']:.3f}: {t['feedback']}"} for t in eval_batch.trajectories or []]
        return {name: records for name in components_to_update}


class QuietLogger:
    """GEPA logs every iteration to stdout; the benchmark prints its own one line per run."""

    def log(self, message: str) -> None:
        pass


def run_gepa(evaluator, client, *, max_metric_calls: int, seed: int, batch_size: int, repeats: int) -> dict:
    """One GEPA run (Pareto selection and merge on, as GEPA recommends); the best candidate as tracec values
    and what it spent."""
    import gepa

    adapter = TracecTaskAdapter(evaluator, repeats)
    calls_before = client.calls

    def reflection_lm(prompt) -> str:
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        return client.complete(messages, json_mode=False).text

    result = gepa.optimize(seed_candidate=adapter.seed_candidate(), trainset=list(evaluator.train),
                           valset=list(evaluator.val), adapter=adapter, reflection_lm=reflection_lm,
                           max_metric_calls=max_metric_calls, reflection_minibatch_size=batch_size,
                           use_merge=True, seed=seed, display_progress_bar=False, raise_on_exception=False,
                           logger=QuietLogger())
    best = result.candidates[result.best_idx]
    try:
        values = adapter.values(best)
    except ValueError:
        values = {}
    return {"values": values, "metric_calls": result.total_metric_calls, "llm_calls": client.calls - calls_before,
            "val": result.val_aggregate_scores[result.best_idx]}
