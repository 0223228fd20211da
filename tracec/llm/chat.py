"""`tracec.chat(system, user)`: the model call a *workflow* makes, so a trainable prompt really reaches a model.

Named workflow_llm (not chat) on purpose: `tracec.chat` is the function, and a submodule called `chat`
would replace it as a package attribute the moment anything imported `tracec.chat` as a module.

The model is resolved the way `tracec optimize` resolves its own: the `model=` argument > `[tool.tracec]`
model in the project's pyproject.toml > $TRACEC_MODEL > the embedded local/smollm2. The server: the
`api_base=` argument > `[tool.tracec]` api_base > $TRACEC_API_BASE (both through config.resolve, as for
the optimizer). Replies are cached on disk like the optimizer's (`.tracec/cache/llm/` under the project
root, unless `[tool.tracec]` cache = false), so scoring the same prompt on the same examples again costs
nothing. litellm is imported on the first call."""

from __future__ import annotations

import threading

DEFAULT_MAX_TOKENS = 200   # workflow answers are short; a bound keeps a rambling model's calls cheap

_clients: dict = {}        # (root, model, api_base, max_tokens) -> LLMClient, reused across calls
_clients_lock = threading.Lock()
_tokens_used = 0           # prompt + completion tokens of every reply in this process, cached ones included


def tokens_used() -> int:
    """What this process's workflow calls have used so far: the `tokens` objective of a task (task.py) is
    its growth while one example runs. A cached reply counts: the objective is what the workflow costs,
    not what this machine happened to pay."""
    return _tokens_used


def _client(model: str | None, api_base: str | None, max_tokens: int):
    from tracec.llm.client import LLMClient
    from tracec.optimize.config import resolve
    from tracec.project import find_project_root

    root = find_project_root()
    config = resolve(root, {"model": model, "api_base": api_base})
    base = config.api_base or None
    key = (str(root), config.model, base, max_tokens, config.cache)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = LLMClient(config.model, api_base=base, max_tokens=max_tokens, seed=config.seed,
                               cache_dir=root / ".tracec" / "cache" / "llm" if config.cache else None)
            _clients[key] = client
    return client


def chat(system: str, user: str, *, model: str | None = None, api_base: str | None = None,
         max_tokens: int = DEFAULT_MAX_TOKENS) -> str:
    """The model's reply to one system + user message (temperature 0, seeded, cached).

    Raises tracec.llm.common.LLMError (a one-line message saying what to fix) when the model cannot be reached."""
    client = _client(model, api_base, max_tokens)
    messages = [{"role": "system", "content": str(system)}, {"role": "user", "content": str(user)}]
    reply = client.complete(messages, json_mode=False)
    global _tokens_used
    with _clients_lock:
        _tokens_used += reply.prompt_tokens + reply.completion_tokens
    return reply.text

