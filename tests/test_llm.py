"""tracec.llm.client through litellm's real OpenAI client path, against a scripted server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from llm_server import Failure

from tracec.llm.client import LLMClient, import_litellm
from tracec.llm.common import BudgetExceeded, LLMError

MODEL = "openai/scripted"
# A model litellm has a price for, served by the scripted server: cost accounting and budgets need prices.
PRICED_MODEL = "openai/gpt-4o-mini"
ASK = [{"role": "system", "content": "You improve programs."},
       {"role": "user", "content": "Suggest a better threshold please"}]
ANSWER = '{"reasoning": "too strict", "suggestion": {"THRESHOLD": 0.7}}'


@pytest.fixture(autouse=True)
def no_user_api_key(monkeypatch):
    # The tests must not depend on (or send) a key from the developer's environment.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def price(prompt_tokens: int, completion_tokens: int) -> float:
    litellm = import_litellm()
    prompt_cost, completion_cost = litellm.cost_per_token(model=PRICED_MODEL, prompt_tokens=prompt_tokens,
                                                          completion_tokens=completion_tokens)
    return prompt_cost + completion_cost


def test_reply_text_and_token_counts_come_from_the_server(scripted_llm):
    server = scripted_llm([ANSWER])
    client = LLMClient(MODEL, api_base=server.url)
    reply = client.complete(ASK)
    assert reply.text == ANSWER
    assert (reply.prompt_tokens, reply.completion_tokens) == (8, 6)   # the server counts words
    assert reply.cached is False and reply.cost_usd == 0.0            # no price known for this model
    assert [m["content"] for m in server.requests[0]["messages"]] == [m["content"] for m in ASK]
    assert server.requests[0]["model"] == "scripted"
    assert (client.calls, client.prompt_tokens, client.completion_tokens, client.cache_hits) == (1, 8, 6, 0)


def test_request_carries_json_mode_seed_temperature_and_max_tokens(scripted_llm):
    server = scripted_llm([ANSWER, "plain words"])
    client = LLMClient(MODEL, api_base=server.url, max_tokens=77, temperature=0.3, seed=5)
    client.complete(ASK)
    client.complete(ASK, json_mode=False)
    json_request, plain_request = server.requests
    assert json_request["response_format"] == {"type": "json_object"}
    assert (json_request["seed"], json_request["temperature"]) == (5, 0.3)
    assert 77 in (json_request.get("max_tokens"), json_request.get("max_completion_tokens"))
    assert "response_format" not in plain_request


def test_second_identical_call_is_served_from_the_disk_cache(scripted_llm, tmp_path):
    server = scripted_llm([ANSWER, "something else"])
    client = LLMClient(MODEL, api_base=server.url, cache_dir=tmp_path / "cache")
    first = client.complete(ASK)
    second = client.complete(ASK)
    assert len(server.requests) == 1
    assert second.text == first.text and second.cached and not first.cached
    assert second.cost_usd == 0.0 and (second.prompt_tokens, second.completion_tokens) == (8, 6)
    assert (client.calls, client.cache_hits, client.prompt_tokens) == (1, 1, 8)
    # Another client (a later `tracec optimize` run) reuses the cache file.
    again = LLMClient(MODEL, api_base=server.url, cache_dir=tmp_path / "cache")
    assert again.complete(ASK).cached and len(server.requests) == 1
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.endswith(".tmp")]


def test_cache_key_includes_messages_and_sampling_parameters(scripted_llm, tmp_path):
    server = scripted_llm(["a", "b", "c", "d"])
    cache = tmp_path / "cache"
    LLMClient(MODEL, api_base=server.url, cache_dir=cache).complete(ASK)
    LLMClient(MODEL, api_base=server.url, cache_dir=cache).complete(ASK + [{"role": "user", "content": "more"}])
    LLMClient(MODEL, api_base=server.url, cache_dir=cache, temperature=0.9).complete(ASK)
    LLMClient(MODEL, api_base=server.url, cache_dir=cache).complete(ASK, json_mode=False)
    assert len(server.requests) == 4


def test_without_cache_dir_every_call_reaches_the_server_and_nothing_is_written(scripted_llm, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    server = scripted_llm([ANSWER, ANSWER])
    client = LLMClient(MODEL, api_base=server.url, cache_dir=None)
    assert not client.complete(ASK).cached
    assert not client.complete(ASK).cached
    assert len(server.requests) == 2 and client.cache_hits == 0
    assert list(tmp_path.iterdir()) == []


def test_damaged_cache_entry_is_asked_again_and_repaired(scripted_llm, tmp_path):
    server = scripted_llm([ANSWER, ANSWER])
    cache = tmp_path / "cache"
    LLMClient(MODEL, api_base=server.url, cache_dir=cache).complete(ASK)
    (entry,) = cache.rglob("*.json")
    entry.write_text("{not json")
    assert not LLMClient(MODEL, api_base=server.url, cache_dir=cache).complete(ASK).cached
    assert json.loads(entry.read_text())["text"] == ANSWER
    assert LLMClient(MODEL, api_base=server.url, cache_dir=cache).complete(ASK).cached
    assert len(server.requests) == 2


def test_cost_is_accounted_with_litellm_prices(scripted_llm):
    server = scripted_llm([ANSWER, "ok fine"])
    client = LLMClient(PRICED_MODEL, api_base=server.url)
    first = client.complete(ASK)
    second = client.complete(ASK)
    assert first.cost_usd == pytest.approx(price(8, 6)) and first.cost_usd > 0
    assert second.cost_usd == pytest.approx(price(8, 2))
    assert client.cost_usd == pytest.approx(first.cost_usd + second.cost_usd)
    assert (client.prompt_tokens, client.completion_tokens) == (16, 8)


def test_budget_refuses_before_the_call_that_could_exceed_it(scripted_llm):
    server = scripted_llm([ANSWER, ANSWER])
    litellm = import_litellm()
    prompt_tokens = litellm.token_counter(model=PRICED_MODEL, messages=ASK)
    worst_case = price(prompt_tokens, 1000)     # what the client must assume before a call
    spent = price(8, 6)                         # what the first call really costs (scripted usage)
    client = LLMClient(PRICED_MODEL, api_base=server.url, max_tokens=1000, budget_usd=worst_case + spent / 2)
    client.complete(ASK)
    with pytest.raises(BudgetExceeded) as refused:
        client.complete(ASK)
    assert len(server.requests) == 1             # refused before anything was sent
    message = str(refused.value)
    assert "\n" not in message and "--budget-usd" in message and "1000 completion tokens" in message
    assert client.calls == 1 and client.cost_usd == pytest.approx(spent)


def test_budget_too_small_for_any_call_sends_nothing_but_cache_hits_still_work(scripted_llm, tmp_path):
    server = scripted_llm([ANSWER])
    cache = tmp_path / "cache"
    LLMClient(PRICED_MODEL, api_base=server.url, cache_dir=cache, max_tokens=100).complete(ASK)
    poor = LLMClient(PRICED_MODEL, api_base=server.url, cache_dir=cache, budget_usd=1e-9, max_tokens=100)
    assert poor.complete(ASK).text == ANSWER                 # cached: costs nothing, allowed
    with pytest.raises(BudgetExceeded):
        poor.complete([{"role": "user", "content": "a new question"}])
    assert len(server.requests) == 1


def test_server_error_becomes_one_line_llm_error(scripted_llm):
    server = scripted_llm([Failure(400, "model scripted does not accept\nthis request")])
    with pytest.raises(LLMError) as failed:
        LLMClient(MODEL, api_base=server.url).complete(ASK)
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith(f"{MODEL} at {server.url}: ") and "does not accept" in message
    assert "Traceback" not in message


def test_unreachable_server_becomes_one_line_llm_error(scripted_llm):
    server = scripted_llm([])
    url = server.url
    server.stop()                                       # nothing listens on that port any more
    with pytest.raises(LLMError) as failed:
        LLMClient(MODEL, api_base=url, timeout=5).complete(ASK)
    assert "\n" not in str(failed.value) and url in str(failed.value)


def test_model_without_provider_is_refused_with_an_example(scripted_llm):
    server = scripted_llm([ANSWER])
    with pytest.raises(LLMError) as failed:
        LLMClient("scripted", api_base=None).complete(ASK)
    assert "openai/gpt-4o-mini" in str(failed.value) and "\n" not in str(failed.value)
    assert server.requests == []


def test_keyless_local_server_gets_a_placeholder_key_and_a_real_key_is_passed_on(scripted_llm, monkeypatch):
    server = scripted_llm([ANSWER, ANSWER])
    LLMClient(MODEL, api_base=server.url).complete(ASK)   # the OpenAI client refuses to run with no key at all
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-user")
    LLMClient(MODEL, api_base=server.url).complete(ASK)
    keyless, keyed = (headers.get("authorization") for headers in server.headers)
    assert keyless and "sk-from-user" not in keyless
    assert keyed == "Bearer sk-from-user"


def test_parallel_calls_keep_the_totals_exact(scripted_llm):
    server = scripted_llm(lambda request: "three word reply")
    client = LLMClient(MODEL, api_base=server.url)
    asks = [[{"role": "user", "content": f"question number {i}"}] for i in range(8)]
    threads = [threading.Thread(target=client.complete, args=(ask,)) for ask in asks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (client.calls, client.prompt_tokens, client.completion_tokens) == (8, 24, 24)
    assert len(server.requests) == 8


def run_python(code: str, cwd: Path, env: dict | None = None) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_instrument_and_run_commands_do_not_import_litellm(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "app.py").write_text(textwrap.dedent("""\
        import sys
        import tracec

        LIMIT = tracec.param(3)

        @tracec.trace
        def grow(x):
            return x + LIMIT

        print("litellm" in sys.modules, grow(1))
    """))
    out = run_python("""
        import sys
        from tracec.cli import main
        import tracec.llm.client   # importing the module must stay cheap too
        assert main(["instrument", "app.py", "-o", "build"]) == 0, "instrument failed"
        print("litellm" in sys.modules)
    """, tmp_path)
    assert out.splitlines()[-1] == "False"
    run = subprocess.run([sys.executable, "-m", "tracec", "run", "app.py"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False 4"


def test_import_litellm_uses_the_bundled_price_list_and_registers_the_embedded_model(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    out = run_python("""
        import os
        from tracec.llm.client import import_litellm
        litellm = import_litellm()
        print(os.environ["LITELLM_LOCAL_MODEL_COST_MAP"], any(p["provider"] == "local"
                                                              for p in litellm.custom_provider_map))
    """, tmp_path, env)
    assert out == "True True"


def test_the_users_own_price_list_setting_is_kept(monkeypatch):
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "false")
    import_litellm()
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "false"


def test_parallel_calls_cannot_overspend_the_budget_together(scripted_llm):
    release = threading.Event()

    def slow_reply(request):
        release.wait(10)     # hold every call in flight until all threads have asked
        return ANSWER

    server = scripted_llm(slow_reply)
    litellm = import_litellm()
    one_call = price(litellm.token_counter(model=PRICED_MODEL, messages=ASK), 1000)
    client = LLMClient(PRICED_MODEL, api_base=server.url, max_tokens=1000, budget_usd=2.5 * one_call)
    outcomes: list[str] = []

    def ask():
        try:
            client.complete(ASK)
            outcomes.append("sent")
        except BudgetExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while outcomes.count("refused") < 2 and time.monotonic() < deadline:   # refused at once, not after
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "refused", "sent", "sent"]
    assert len(server.requests) == 2
