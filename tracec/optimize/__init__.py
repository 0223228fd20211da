"""`tracec optimize`'s engine: the loop, the evaluators, candidates, the prompt and the reply checker,
bounds, settings, run state and console output."""
