"""One LLM call at a time through litellm: disk cache, token and cost accounting, a hard budget.

litellm is imported lazily (only `tracec optimize` needs it): importing it costs seconds, and without
LITELLM_LOCAL_MODEL_COST_MAP it first tries to download a price list, which blocks ~9 s offline.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from tracec.errors import one_line
from tracec.fileio import sha256_hex, write_atomic
from tracec.llm.common import LOCAL_MODEL, LOCAL_PROVIDER, BudgetExceeded, LLMError, litellm_module

# Sent as the key when a model has an api_base but no key in the environment: OpenAI-compatible local
# servers (llama.cpp, vLLM, Ollama) ignore it, while the OpenAI client refuses to start without one.
PLACEHOLDER_API_KEY = "tracec-no-key"
CACHE_VERSION = 1

_register_lock = threading.Lock()


@dataclass(frozen=True)
class LLMReply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float      # what this call cost; 0.0 for a cached reply (nothing was spent)
    cached: bool


def import_litellm():
    """The litellm module, imported on first use, with the embedded-model provider registered once."""
    with _register_lock:   # parallel proposal calls: one thread imports, the others wait for the whole module
        litellm = litellm_module()
        if not any(item.get("provider") == LOCAL_PROVIDER for item in litellm.custom_provider_map):
            from tracec.llm.local_model import LocalModelHandler

            # A new list rather than append: the map may be a shared default some other code also holds.
            litellm.custom_provider_map = [*litellm.custom_provider_map,
                                           {"provider": LOCAL_PROVIDER, "custom_handler": LocalModelHandler()}]
        # litellm prints a "Provider List" banner on stdout for every provider error otherwise.
        litellm.suppress_debug_info = True
    return litellm


def _usd(amount: float) -> str:
    return f"${amount:.4f}" if amount == 0 or abs(amount) >= 0.01 else f"${amount:.2e}"


def _our_error(exc: BaseException) -> LLMError | None:
    """An LLMError that litellm wrapped into one of its own exception types, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, LLMError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _error_summary(exc: BaseException) -> str:
    """`Type: first line of the message`; litellm messages embed their own type and a traceback."""
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else ""
    if not message.startswith("litellm."):
        message = f"{type(exc).__name__}: {message}"
    return one_line(message, 300)


class LLMClient:
    """Chat completions for one model. Running totals count only calls actually made (not cache hits)."""

    def __init__(self, model: str, *, api_base: str | None = None, max_tokens: int | None = None,
                 temperature: float = 0.0, seed: int | None = 0, cache_dir: Path | None = None,
                 budget_usd: float | None = None, timeout: float = 120.0):
        self.model = model
        self.api_base = api_base
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.seed = seed
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.budget_usd = budget_usd
        self.timeout = timeout
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost_usd = 0.0
        self.calls = 0
        self.cache_hits = 0
        self._reserved_usd = 0.0      # worst-case cost of calls in flight (see _reserve_budget)
        self._supports_json: bool | None = None
        self._supports_schema: bool | None = None
        self._lock = threading.Lock()   # totals and the budget check stay consistent under parallel calls

    # -- public -----------------------------------------------------------------------------------------
    def complete(self, messages: list[dict], *, json_mode: bool = True, schema: dict | None = None,
                 temperature: float | None = None, seed: int | None = None) -> LLMReply:
        """`schema`: the reply's JSON schema, sent as structured output where the model supports it
        (the embedded model then cannot produce anything else), otherwise plain JSON mode.
        `temperature`/`seed` override the client's for this call (retries sample differently)."""
        litellm = import_litellm()
        params = self._params(litellm, json_mode, schema)
        if temperature is not None:
            params["temperature"] = temperature
        if seed is not None and "seed" in params:
            params["seed"] = seed
        key = self._cache_key(messages, params)
        cached = self._read_cache(key)
        if cached is not None:
            with self._lock:
                self.cache_hits += 1
            return cached
        if self.model.split("/", 1)[0] == LOCAL_PROVIDER:
            from tracec.llm.local_model import check_available

            check_available()
        with self._lock:
            reserved = self._reserve_budget(litellm, messages)
        try:
            response = self._call(litellm, messages, params)
            reply = self._reply(litellm, messages, response)
        finally:
            with self._lock:
                self._reserved_usd -= reserved
        with self._lock:
            self.calls += 1
            self.prompt_tokens += reply.prompt_tokens
            self.completion_tokens += reply.completion_tokens
            self.cost_usd += reply.cost_usd
        self._write_cache(key, reply)
        return reply

    # -- request ----------------------------------------------------------------------------------------
    def _params(self, litellm, json_mode: bool, schema: dict | None = None) -> dict:
        params: dict = {"temperature": self.temperature}
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        if self.seed is not None:
            params["seed"] = self.seed
        if json_mode and self._json_supported(litellm):
            params["response_format"] = {"type": "json_object"}
            if schema is not None and self._schema_supported(litellm):
                params["response_format"] = {"type": "json_schema",
                                             "json_schema": {"name": "tracec_reply", "schema": schema}}
        return params

    def _schema_supported(self, litellm) -> bool:
        if self._supports_schema is None:   # asked once per client, like _json_supported
            model, provider = self._provider(litellm)
            try:
                self._supports_schema = provider == LOCAL_PROVIDER or bool(
                    litellm.supports_response_schema(model=model, custom_llm_provider=provider))
            except Exception:
                self._supports_schema = False
        return self._supports_schema

    def _provider(self, litellm) -> tuple[str, str]:
        try:
            model, provider, _, _ = litellm.get_llm_provider(self.model, api_base=self.api_base)
        except Exception:
            raise LLMError(f"unknown model {self.model!r}: use a litellm model string with its provider, "
                           f"e.g. 'openai/gpt-4o-mini', or {LOCAL_MODEL!r}") from None
        return model, provider

    def _json_supported(self, litellm) -> bool:
        if self._supports_json is None:
            model, provider = self._provider(litellm)
            if provider == LOCAL_PROVIDER:
                from tracec.llm.local_model import SUPPORTED_PARAMS

                supported = SUPPORTED_PARAMS
            else:
                try:
                    supported = litellm.get_supported_openai_params(model=model, custom_llm_provider=provider)
                except Exception:
                    supported = None
            self._supports_json = "response_format" in (supported or ())
        return self._supports_json

    def _api_key(self, litellm) -> str | None:
        if self.api_base is None:
            return None
        try:
            has_key = litellm.validate_environment(model=self.model).get("keys_in_environment", False)
        except Exception:
            has_key = False
        return None if has_key else PLACEHOLDER_API_KEY

    def _call(self, litellm, messages: list[dict], params: dict):
        extra: dict = {}
        if self.api_base is not None:
            extra["api_base"] = self.api_base
        api_key = self._api_key(litellm)
        if api_key is not None:
            extra["api_key"] = api_key
        try:
            return litellm.completion(model=self.model, messages=messages, timeout=self.timeout,
                                      **params, **extra)
        except Exception as exc:
            ours = _our_error(exc)
            if ours is not None:   # raised by the embedded model's handler: already says what to do
                raise ours from None
            where = f" at {self.api_base}" if self.api_base else ""
            raise LLMError(f"{self.model}{where}: {_error_summary(exc)}; "
                           "check the model name, --api-base and the provider's API key") from exc

    # -- accounting -------------------------------------------------------------------------------------
    def _count_tokens(self, litellm, messages: list[dict]) -> int:
        try:
            return int(litellm.token_counter(model=self.model, messages=messages))
        except Exception:
            # A rough count beats none: about four characters per token in English prose and code.
            return sum(len(str(message.get("content") or "")) for message in messages) // 4

    def _price(self, litellm, prompt_tokens: int, completion_tokens: int) -> float:
        try:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=self.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        except Exception:
            return 0.0   # unknown or local model: litellm has no price, so it is free as far as we know
        return float(prompt_cost) + float(completion_cost)

    def _max_completion_tokens(self, litellm) -> int:
        if self.max_tokens is not None:
            return self.max_tokens
        try:
            return int(litellm.get_model_info(self.model).get("max_output_tokens") or 0)
        except Exception:
            return 0

    def _reserve_budget(self, litellm, messages: list[dict]) -> float:
        """The worst-case cost of the next call, held against the budget until the call returns (so
        parallel calls cannot all pass the check on the same unspent money); BudgetExceeded if it does not fit."""
        if self.budget_usd is None:
            return 0.0
        prompt_tokens = self._count_tokens(litellm, messages)
        completion_tokens = self._max_completion_tokens(litellm)
        estimate = self._price(litellm, prompt_tokens, completion_tokens)
        committed = self.cost_usd + self._reserved_usd
        if committed + estimate > self.budget_usd:
            raise BudgetExceeded(
                f"budget {_usd(self.budget_usd)} would be exceeded: spent {_usd(self.cost_usd)}"
                + (f" (+{_usd(self._reserved_usd)} in calls running)" if self._reserved_usd else "")
                + f", next call up to {_usd(estimate)} ({prompt_tokens} prompt + {completion_tokens} "
                "completion tokens); raise --budget-usd or lower --max-tokens")
        self._reserved_usd += estimate
        return estimate

    def _reply(self, litellm, messages: list[dict], response) -> LLMReply:
        try:
            text = response.choices[0].message.content or ""
        except (AttributeError, IndexError) as exc:
            raise LLMError(f"{self.model}: the reply has no message ({exc}); the server is not "
                           "OpenAI-compatible or returned an empty choice list") from None
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        completion_tokens = getattr(usage, "completion_tokens", None)
        if prompt_tokens is None:
            prompt_tokens = self._count_tokens(litellm, messages)
        if completion_tokens is None:
            completion_tokens = self._count_tokens(litellm, [{"role": "assistant", "content": text}])
        try:
            cost = float(litellm.completion_cost(completion_response=response, model=self.model) or 0.0)
        except Exception:
            cost = 0.0
        return LLMReply(text=text, prompt_tokens=int(prompt_tokens), completion_tokens=int(completion_tokens),
                        cost_usd=cost, cached=False)

    # -- cache ------------------------------------------------------------------------------------------
    def _cache_key(self, messages: list[dict], params: dict) -> str:
        # The server address is left out on purpose: the same model answers the same prompt the same way
        # wherever it is served, and a local server's port may change between runs.
        # ASCII escapes: text holding a lone surrogate (from a model or the task's data) still hashes and stores
        payload = json.dumps({"v": CACHE_VERSION, "model": self.model, "messages": messages, "params": params},
                             sort_keys=True, ensure_ascii=True, default=str)
        return sha256_hex(payload.encode("utf-8"))

    def _cache_path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / key[:2] / f"{key}.json"

    def _read_cache(self, key: str) -> LLMReply | None:
        path = self._cache_path(key)
        if path is None:
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            return LLMReply(text=str(entry["text"]), prompt_tokens=int(entry["prompt_tokens"]),
                            completion_tokens=int(entry["completion_tokens"]), cost_usd=0.0, cached=True)
        except (OSError, ValueError, KeyError, TypeError):
            return None   # missing or damaged entry: ask the model again, the write below repairs it

    def _write_cache(self, key: str, reply: LLMReply) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        entry = {"model": self.model, "text": reply.text, "prompt_tokens": reply.prompt_tokens,
                 "completion_tokens": reply.completion_tokens, "cost_usd": reply.cost_usd}
        try:
            write_atomic(path, json.dumps(entry, ensure_ascii=True, indent=1) + "\n")
        except OSError as exc:
            raise LLMError(f"{path}: cannot write the LLM cache ({exc.strerror}); "
                           "fix the permissions or run with --no-cache") from None
