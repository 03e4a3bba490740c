"""The app through the Gradio API (gradio_client), against the loopback provider on 127.0.0.1."""

from __future__ import annotations

from itertools import pairwise

import httpx
import pytest
from gradio_client.utils import QueueError, Status

from llmtool.loopback import DEFAULT_TEXT, Scenario, split_tokens
from llmtool.ui.transcript import VALIDATING
from llmtool.web.security import CONTENT_SECURITY_POLICY
from tests.ui.ui_support import STOPPED_MARK, answer_text, app_context, on_server_loop, strings, wait_for

CHAT, STATUS, VALIDATION, PROMPT = range(4)
SLOW = Scenario(tokens_per_second=25, text="word " * 300)


def streaming_started(job) -> bool:
    return any(answer_text(o[CHAT]) not in (None, "", "…") for o in job.outputs())


def test_streamed_answer_grows_and_finishes(ui_server, lb, connect) -> None:
    lb.enqueue(Scenario(tokens_per_second=120))
    job = connect(ui_server.url).submit(prompt="Tell me about loopback servers", api_name="/chat")
    result = job.result(timeout=20)
    outputs = job.outputs()

    answers = [a for a in (answer_text(o[CHAT]) for o in outputs) if a not in (None, "", "…")]
    assert len(set(answers)) >= 3, "the answer should arrive in several steps"
    assert all(later.startswith(earlier) for earlier, later in pairwise(answers))
    assert answer_text(result[CHAT]) == DEFAULT_TEXT
    assert result[STATUS].startswith("Done · TTFT")
    assert "12→" in result[STATUS]  # tokens in → out from the provider's usage
    assert strings(outputs, PROMPT) == [""]  # the first update empties the prompt box, and only it
    # Coalesced: far fewer page updates than tokens.
    assert len(outputs) < len(split_tokens(DEFAULT_TEXT))


def test_the_conversation_is_sent_to_the_provider(ui_server, lb, connect) -> None:
    lb.enqueue(Scenario(text="First answer."), Scenario(text="Second answer."))
    client = connect(ui_server.url)
    client.predict(prompt="first question", system="Be brief.", temperature=0.2,
                   max_output_tokens=50, api_name="/chat")
    result = client.predict(prompt="second question", api_name="/chat")
    body = lb.requests[1].body
    assert body["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "second question"},
    ]
    assert lb.requests[0].body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert lb.requests[0].body["temperature"] == 0.2
    assert [answer_text([m]) for m in result[CHAT]] == [
        "first question", "First answer.", "second question", "Second answer."
    ]


def test_cancelling_the_job_stops_reading_but_the_run_completes_and_is_kept(ui_server, lb, connect) -> None:
    lb.enqueue(Scenario(tokens_per_second=100, text="word " * 100))
    job = connect(ui_server.url).submit(prompt="go on", api_name="/chat")
    wait_for(lambda: streaming_started(job), what="the first text")
    saved = [o[-1] for o in job.outputs() if isinstance(o[-1], dict) and o[-1].get("conversation_id")]
    job.cancel()  # what a closed tab does: the reader goes, the run stays
    record = lb.wait_closed(0, timeout=10)
    assert not record.closed_by_client
    context = app_context(ui_server)
    store = context.started_service().store

    def completed() -> list:
        return [r for r in on_server_loop(context, store.conversation(saved[0]["conversation_id"]))
                if r.status == "completed"]

    (run,) = wait_for(completed, timeout=10, what="the run to be stored as completed")
    assert run.text == "word " * 100 and (run.source, run.position, run.user) == ("chat", 0, None)


def test_stop_keeps_the_partial_answer_and_closes_the_upstream_connection(ui_server, lb, connect) -> None:
    lb.enqueue(SLOW)
    client = connect(ui_server.url)
    job = client.submit(prompt="go on", api_name="/chat")
    wait_for(lambda: streaming_started(job), what="the first text")
    result = client.predict(api_name="/stop")

    record = lb.wait_closed(0, timeout=5)
    assert record.closed_by_client and record.deltas_sent < 300
    answer = answer_text(result[CHAT])
    assert answer.endswith("\n\n" + STOPPED_MARK)
    partial = answer.removesuffix("\n\n" + STOPPED_MARK)
    assert partial and ("word " * 300).startswith(partial)
    assert result[STATUS].startswith("Stopped after") and "partial answer kept" in result[STATUS]
    wait_for(job.done, timeout=5, what="the streaming job to end")


def test_a_retry_shows_its_reason_and_countdown(ui_server, lb, connect) -> None:
    lb.enqueue(Scenario(kind="http_error", status=429, headers={"retry-after-ms": "400"}),
               Scenario(text="Worth the wait."))
    job = connect(ui_server.url).submit(prompt="hi", api_name="/chat")
    result = job.result(timeout=20)
    statuses = strings(job.outputs(), STATUS)
    assert any(s.startswith("rate limited (HTTP 429) — retrying in") and "attempt 2 of 4" in s
               for s in statuses), statuses
    assert answer_text(result[CHAT]) == "Worth the wait."
    assert result[STATUS].startswith("Done") and "2 attempts" in result[STATUS]


def test_a_provider_error_is_a_clear_message(ui_server, lb, connect) -> None:
    lb.enqueue(Scenario(kind="http_error", status=401))
    result = connect(ui_server.url).predict(prompt="hi", api_name="/chat")
    assert result[STATUS].startswith("Failed: local refused the API key (HTTP 401)")
    assert "⚠ Failed: local refused the API key" in answer_text(result[CHAT])
    assert "Traceback" not in str(result)


def test_a_stalled_stream_fails_clearly_and_keeps_the_partial_answer(ui_server, lb, connect) -> None:
    lb.enqueue(Scenario(kind="stall_mid_stream", after_tokens=4, stall_seconds=20, tokens_per_second=200))
    job = connect(ui_server.url).submit(prompt="hi", api_name="/chat")
    result = job.result(timeout=20)
    expected_partial = "".join(split_tokens(DEFAULT_TEXT)[:4])
    answer = answer_text(result[CHAT])
    assert answer.startswith(expected_partial + "\n\n_⚠ Failed:")
    assert result[STATUS] == "Failed: local stopped sending for more than 1 s · partial answer kept"
    assert any(s.startswith("Streaming") for s in strings(job.outputs(), STATUS))
    assert lb.wait_closed(0, timeout=5).closed_by_client


def test_an_empty_prompt_is_a_warning_not_a_run(ui_server, lb, connect) -> None:
    result = connect(ui_server.url).predict(prompt="   ", api_name="/chat")
    assert "the prompt is empty" in result[STATUS]
    assert lb.requests == []


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("openai:gpt-4.1-mini", "openai:gpt-4.1-mini needs OPENAI_API_KEY"),
        ("nobody:model", "unknown provider 'nobody'"),
        ("local", "must be written PROVIDER:MODEL"),  # any model name of a provider is passed on
    ],
)
def test_an_unusable_model_is_refused_clearly(ui_server, lb, connect, model, message) -> None:
    result = connect(ui_server.url).predict(prompt="hi", model=model, api_name="/chat")
    assert message in result[STATUS]
    assert lb.requests == []


def test_two_clients_stream_at_the_same_time(ui_server, lb, connect) -> None:
    paced = Scenario(tokens_per_second=40, text="w " * 40)  # about a second each
    lb.enqueue(paced, paced)
    jobs = [connect(ui_server.url).submit(prompt=f"user {i}", api_name="/chat") for i in range(2)]
    for job in jobs:
        assert job.result(timeout=20)[STATUS].startswith("Done")
    first, second = lb.requests
    assert first.closed_at is not None and second.closed_at is not None
    # Both provider streams were open at once: nobody waited for the other's answer.
    assert second.received_at < first.closed_at and first.received_at < second.closed_at


def test_a_full_queue_says_busy(start_ui, lb, connect) -> None:
    server = start_ui(ui={"concurrency": 1, "queue_size": 1})
    lb.enqueue(SLOW, SLOW)
    running = connect(server.url).submit(prompt="one", api_name="/chat")
    wait_for(lambda: streaming_started(running), what="the first run to stream")
    waiting = connect(server.url).submit(prompt="two", api_name="/chat")
    wait_for(lambda: waiting.status().code == Status.IN_QUEUE, what="the second run to queue")
    refused = connect(server.url).submit(prompt="three", api_name="/chat")
    with pytest.raises(QueueError, match="Queue is full"):
        refused.result(timeout=10)
    running.cancel()
    waiting.cancel()


def test_buffer_mode_shows_the_answer_only_once_it_passed(ui_server, lb, connect) -> None:
    lb.enqueue(Scenario(text='{"answer": 42}', tokens_per_second=30))
    job = connect(ui_server.url).submit(prompt="json please", mode="buffer", must_be_json=True,
                                        api_name="/chat")
    result = job.result(timeout=20)
    answers = [a for a in (answer_text(o[CHAT]) for o in job.outputs()[:-1]) if a is not None]
    assert answers and set(answers) == {VALIDATING}
    assert answer_text(result[CHAT]) == '{"answer": 42}'
    assert result[VALIDATION] == "Validation passed (1 rule)"


def test_buffer_mode_withholds_an_answer_that_failed(ui_server, lb, connect) -> None:
    lb.enqueue(Scenario(text="not json at all"))
    result = connect(ui_server.url).predict(prompt="json please", mode="buffer", must_be_json=True,
                                            api_name="/chat")
    withheld, reason = result[CHAT][-1], result[CHAT][-2]
    assert "Withheld: the answer failed validation — not valid JSON" in answer_text([reason])
    assert answer_text([withheld]) == "not json at all"
    assert withheld["metadata"]["title"] == "Withheld answer (failed validation)"
    assert result[VALIDATION].startswith("Validation failed (1 rule): not valid JSON")


def test_stream_mode_reports_validation_beside_the_answer(ui_server, lb, connect) -> None:
    lb.enqueue(Scenario(text="lorem ipsum dolor"))
    result = connect(ui_server.url).predict(prompt="hi", forbidden_words="lorem, sit",
                                            api_name="/chat")
    assert answer_text(result[CHAT]) == "lorem ipsum dolor"
    assert result[VALIDATION] == "Validation failed (2 rules): forbidden word used: lorem"


def test_regenerate_replaces_the_last_answer(ui_server, lb, connect) -> None:
    lb.enqueue(Scenario(text="First try."), Scenario(text="Second try."))
    client = connect(ui_server.url)
    client.predict(prompt="q1", api_name="/chat")
    result = client.predict(api_name="/regenerate")
    assert [answer_text([m]) for m in result[CHAT]] == ["q1", "Second try."]
    assert lb.requests[1].body["messages"] == [{"role": "user", "content": "q1"}]


def test_clear_forgets_the_conversation(ui_server, lb, connect) -> None:
    lb.enqueue(Scenario(text="One."), Scenario(text="Two."))
    client = connect(ui_server.url)
    client.predict(prompt="q1", api_name="/chat")
    assert client.predict(api_name="/clear")[CHAT] == []
    client.predict(prompt="q2", api_name="/chat")
    assert lb.requests[1].body["messages"] == [{"role": "user", "content": "q2"}]


def test_clear_during_a_stream_forgets_the_stopped_turn(ui_server, lb, connect) -> None:
    lb.enqueue(SLOW, Scenario(text="Fresh start."))
    client = connect(ui_server.url)
    job = client.submit(prompt="first question", api_name="/chat")
    wait_for(lambda: streaming_started(job), what="the first text")
    cleared = client.predict(api_name="/clear")
    assert cleared[CHAT] == [] and cleared[STATUS] == ""
    assert lb.wait_closed(0, timeout=5).closed_by_client
    wait_for(job.done, timeout=5, what="the streaming job to end")
    result = client.predict(prompt="second question", api_name="/chat")
    # Nothing of the cleared conversation is sent again, nor shown.
    assert lb.requests[1].body["messages"] == [{"role": "user", "content": "second question"}]
    assert [answer_text([m]) for m in result[CHAT]] == ["second question", "Fresh start."]


def test_regenerate_with_nothing_to_regenerate_says_so(ui_server, lb, connect) -> None:
    result = connect(ui_server.url).predict(api_name="/regenerate")
    assert "Nothing to regenerate" in result[STATUS]
    assert lb.requests == []


def test_the_page_config_and_api_hold_no_secrets(start_ui, lb, loopback, connect) -> None:
    # (A password in a base URL is refused by the settings: see tests/core for that.)
    key, password = "sk-test-DO-NOT-LEAK-1234567890", "endpoint-DO-NOT-LEAK-99"
    server = start_ui(
        openai_api_key=key,
        endpoints={"local": {"base_url": loopback.openai_base_url, "models": ["m"], "api_key": password}},
    )
    lb.enqueue(Scenario(kind="http_error", status=500, error_message=f"echoing {key} and {password}"),
               Scenario(kind="http_error", status=400, error_message=f"echoing {key} and {password}"))
    result = connect(server.url).predict(prompt="hi", api_name="/chat")
    assert result[STATUS].startswith("Failed")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        page = http.get("/")
        texts = [page.text, str(result)] + [
            http.get(path).text for path in ("/config", "/gradio_api/info", "/gradio_api/info?all_endpoints=true")
        ]
    for text in texts:
        for secret in (key, password):
            assert secret not in text
    assert "openai:gpt-5" in page.text  # the key made OpenAI's models usable, by name only
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    # What the browser got: model output cannot load a remote image (or anything else remote).
    sent = dict(d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";"))
    assert sent["img-src"] == "'self' data: blob:" and sent["default-src"] == "'self'"
    assert not any("*" in v or "http" in v for v in sent.values()), sent


class _RefusingStore:
    """The real store whose writes fail (a database that went away)."""

    def __init__(self, store) -> None:  # type: ignore[no-untyped-def]
        self.store = store

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.store, name)

    async def save(self, new, updates) -> None:  # type: ignore[no-untyped-def]
        raise OSError("connection refused")


def test_while_the_store_fails_answers_still_stream_and_the_status_says_they_are_not_kept(
    ui_server, lb, connect
) -> None:
    recorder = app_context(ui_server).started_service().recorder
    real = recorder.store
    recorder.store = _RefusingStore(real)
    try:
        client = connect(ui_server.url)
        lb.enqueue(Scenario(tokens_per_second=500))
        client.predict(prompt="first", api_name="/chat")
        wait_for(lambda: recorder.problem, timeout=5, what="the failed write")
        lb.enqueue(Scenario(tokens_per_second=500))
        result = client.predict(prompt="second", api_name="/chat")
        assert answer_text(result[CHAT]) == DEFAULT_TEXT  # the answer is there
        assert result[STATUS].startswith("Done · TTFT")
        assert "history is not being saved right now" in result[STATUS]
    finally:
        recorder.store = real
    wait_for(lambda: recorder.problem is None, timeout=5, what="the retried writes")
    lb.enqueue(Scenario(tokens_per_second=500))
    result = connect(ui_server.url).predict(prompt="third", api_name="/chat")
    assert "not being saved" not in result[STATUS]
