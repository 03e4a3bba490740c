"""Three replicas as real processes (`python app.py`'s server each, on loopback ports) sharing one
PostgreSQL and one Redis, the loopback server as their OpenAI, everything through HTTP as a client of
the balancer would see it: a run started on replica 1 is known on replica 2 as soon as the 202 (or
/lite's 303) came, is followed there from the middle (Last-Event-ID: exactly the rest) and is stopped
from replica 3 (its provider connection closes within 2 s). Redis restarted while followers on the
other replicas stream: they resume, nothing lost or twice. (The in-process versions:
test_replicas_web.py, test_live_events.py.)"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse
from redis import Redis

from llmtool.loopback import LoopbackServer, RecordedRequest, Scenario
from llmtool.replicas.streams import position_of, stream_key
from tests.replicas.conftest import words
from tests.replicas.processes import AppProcess
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer
from tests.web.support import send_form, start_run, state

MODEL = "openai:gpt-4.1-mini"
ENDINGS = frozenset({"completed", "stopped", "failed", "interrupted"})
READ_TIMEOUT = 20.0  # seconds an HTTP read may wait (a follower while Redis restarts included)


@dataclass
class Replicas:
    apps: list[AppProcess]
    redis: RedisServer

    @property
    def urls(self) -> list[str]:
        return [app.url for app in self.apps]

    def logs(self) -> str:
        """The end of each replica's log, for a failure's message."""
        return "\n".join(f"--- replica {n} ({app.url})\n{app.output()[-3000:]}" for n, app in enumerate(self.apps, 1))


@pytest.fixture(scope="module")
def replicas(loopback: LoopbackServer, postgres_server: PostgresServer,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    folder = tmp_path_factory.mktemp("three-replicas")
    with RedisServer() as redis:  # this module's own: a test restarts it
        env = {
            "LLMTOOL_DATABASE_URL": postgres_server.new_database(),
            "LLMTOOL_REDIS_URL": redis.url(),
            "OPENAI_API_KEY": "sk-loopback-secret",
            "OPENAI_BASE_URL": loopback.openai_base_url,
            "LLMTOOL_STORE__HEARTBEAT_INTERVAL": "0.5",
            "LLMTOOL_RUNS__DRAIN_SECONDS": "1",
        }
        apps = [AppProcess(folder, **env) for _ in range(3)]
        try:
            for app in apps:  # side by side: three imports of Gradio take a while on two cores
                app.start()
            for app in apps:
                app.ready(timeout=90)
            yield Replicas(apps, redis)
        finally:
            for app in apps:
                if app.process is not None and app.process.poll() is None:
                    app.terminate()  # SIGTERM: they drain (1 s) and go, all at once
            for app in apps:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    if app.process is not None:
                        app.wait(20)
                app.__exit__()  # (killed if it did not go)


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=READ_TIMEOUT))


def read_events(http: httpx.Client, run_id: str, last_event_id: str | None = None,
                limit: int | None = None) -> list[ServerSentEvent]:
    """The run's SSE frames as this replica sends them, to the ending (or the first `limit`)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    seen: list[ServerSentEvent] = []
    with connect_sse(http, "GET", f"/api/runs/{run_id}/events", headers=headers) as source:
        assert source.response.status_code == 200, source.response.read()
        for sse in source.iter_sse():
            seen.append(sse)
            if sse.event in ENDINGS or (limit is not None and len(seen) >= limit):
                break
    return seen


class Follower:
    """Reads a run's events on one replica in a thread of its own, as a browser's EventSource would."""

    def __init__(self, url: str, run_id: str, last_event_id: str | None = None) -> None:
        self.frames: list[ServerSentEvent] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, args=(url, run_id, last_event_id), daemon=True)
        self._thread.start()

    def _read(self, url: str, run_id: str, last_event_id: str | None) -> None:
        headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
        try:
            with client(url) as http, connect_sse(http, "GET", f"/api/runs/{run_id}/events",
                                                  headers=headers) as source:
                assert source.response.status_code == 200, source.response.read()
                for sse in source.iter_sse():
                    self.frames.append(sse)
                    if sse.event in ENDINGS:
                        return
        except BaseException as error:  # (told by `reached` and `ended`, in the test's thread)
            self.error = error

    def reached(self, count: int, timeout: float = 15) -> int:
        """Once it has `count` frames (it may have more by then): how many."""
        deadline = time.monotonic() + timeout
        while len(self.frames) < count:
            assert self.error is None and self._thread.is_alive(), (self.error, ids(self.frames))
            assert time.monotonic() < deadline, f"{len(self.frames)} frames after {timeout} s"
            time.sleep(0.01)
        return len(self.frames)

    def ended(self, timeout: float = 30) -> list[ServerSentEvent]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"still reading after {timeout} s: {ids(self.frames)}"
        if self.error is not None:
            raise self.error
        return self.frames


def ids(frames: list[ServerSentEvent]) -> list[int]:
    return [int(frame.id) for frame in frames]


def as_sent(frames: list[ServerSentEvent]) -> list[tuple[str, str, str]]:
    return [(frame.id, frame.event, frame.data) for frame in frames]


def the_answer_request(upstream: LoopbackServer, timeout: float = 10) -> RecordedRequest:
    """The run's request to the provider (a replica may also have listed the models)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [request for request in upstream.requests if request.protocol not in (None, "models")]
        if found:
            assert len(found) == 1, found
            return found[0]
        assert time.monotonic() < deadline, upstream.requests
        time.sleep(0.01)


def assert_whole(frames: list[ServerSentEvent], start: int, ending: str) -> None:
    """Every position from `start` on, once, in order, and one ending, last."""
    assert ids(frames) == list(range(start, start + len(frames))), ids(frames)
    assert [frame.event for frame in frames if frame.event in ENDINGS] == [ending], frames[-1]
    assert frames[-1].event == ending


def test_a_run_of_replica_1_is_known_on_2_at_once_followed_there_from_the_middle_and_is_exactly_the_rest(
        replicas: Replicas, upstream: LoopbackServer) -> None:
    one, two, _ = replicas.urls
    upstream.enqueue(Scenario(text=words(160), tokens_per_second=40))  # ~4 s: replica 2 joins mid-run
    with client(one) as on_1, client(two) as on_2:
        run = start_run(on_1, {"model": MODEL, "prompt": "Tell me a story"})
        # The 202 came once the run was stored: round robin may send the next request anywhere.
        known = on_2.get(f"/api/runs/{run['id']}")
        assert known.status_code == 200, (known.text, replicas.logs())
        assert known.json()["status"] == "running"

        first = read_events(on_2, run["id"], limit=10)  # then the connection drops
        assert ids(first) == list(range(10)) and first[0].event == "started"
        assert on_2.get(f"/api/runs/{run['id']}").json()["status"] == "running"  # resumed mid-run
        rest = read_events(on_2, run["id"], last_event_id=first[-1].id)
        assert_whole(rest, start=10, ending="completed")

        on_owner = read_events(on_1, run["id"])  # the owner's own log, once it ended
        assert as_sent(first + rest) == as_sent(on_owner)
        text = "".join(json.loads(frame.data)["text"] for frame in first + rest if frame.event == "text")
        assert text.split() == words(160).split() == json.loads(rest[-1].data)["text"].split()
        assert not the_answer_request(upstream).closed_by_client  # reading elsewhere never stopped it


def test_a_run_started_through_lite_on_replica_1_has_its_page_on_replica_2_at_once(replicas: Replicas) -> None:
    """/lite is round robin too: the 303's page may be asked of another replica than the one that started it."""
    one, two, _ = replicas.urls
    with client(one) as on_1, client(two) as on_2:
        for _ in range(3):
            location = send_form(on_1, prompt=words(40), model="demo:echo")
            page = on_2.get(location)
            assert page.status_code == 200, (page.text[-500:], replicas.logs())
            assert state(page)


def test_stop_on_replica_3_stops_the_run_of_replica_1_and_closes_its_provider_connection(
        replicas: Replicas, upstream: LoopbackServer) -> None:
    one, two, three = replicas.urls
    upstream.enqueue(Scenario(text=words(400), tokens_per_second=20))  # 20 s unless stopped
    with client(one) as on_1, client(two) as on_2, client(three) as on_3:
        run = start_run(on_1, {"model": MODEL, "prompt": "Tell me a long story"})
        follower = Follower(two, run["id"])
        follower.reached(5)  # streaming, as replica 2 follows it
        began = time.monotonic()
        stopped = on_3.post(f"/api/runs/{run['id']}/cancel")  # on neither the owner nor the follower's replica
        assert stopped.status_code == 200, (stopped.text, replicas.logs())
        assert stopped.json()["status"] == "stopped" and stopped.json()["cancel_requested"]
        request = upstream.wait_closed(the_answer_request(upstream).index, timeout=10)
        assert request.closed_by_client and request.deltas_sent < 400
        assert request.closed_at is not None and request.closed_at - began < 2, request.closed_at - began  # loosely
        for http in (on_1, on_2, on_3):
            assert http.get(f"/api/runs/{run['id']}").json()["status"] == "stopped"
        followed = follower.ended()
        assert_whole(followed, start=0, ending="stopped")
        assert as_sent(followed) == as_sent(read_events(on_1, run["id"]))
        streamed = "".join(json.loads(frame.data)["text"] for frame in followed if frame.event == "text")
        assert streamed and json.loads(followed[-1].data)["text"] == streamed


def test_redis_restarted_mid_run_followers_on_other_replicas_resume_nothing_lost_or_twice(
        replicas: Replicas, upstream: LoopbackServer) -> None:
    """Last in this module: the other tests need not live with a Redis that lost everything."""
    one, two, three = replicas.urls
    upstream.enqueue(Scenario(text=words(240), tokens_per_second=40))  # ~6 s
    with client(one) as on_1:
        run = start_run(on_1, {"model": MODEL, "prompt": "Tell me a story"})
        from_start = Follower(two, run["id"])
        from_start.reached(5)
        from_middle = Follower(three, run["id"], last_event_id="4")
        from_middle.reached(10)
        before = from_start.reached(20)
        replicas.redis.restart()  # the same port, an empty server: every stream is lost
        status = on_1.get(f"/api/runs/{run['id']}").json()
        assert status["status"] == "running", status  # restarted mid-run

        whole = from_start.ended()
        assert len(whole) > before + 20  # it went on streaming after the restart
        assert_whole(whole, start=0, ending="completed")
        assert_whole(from_middle.ended(), start=5, ending="completed")
        on_owner = read_events(on_1, run["id"])
        assert as_sent(whole) == as_sent(on_owner), replicas.logs()
        assert as_sent(from_middle.frames) == as_sent(on_owner[5:])
        assert json.loads(whole[-1].data)["text"].split() == words(240).split()
        with Redis.from_url(replicas.redis.url()) as redis:  # what came before the restart: from the store
            kept = redis.xrange(stream_key(run["id"]), count=1)
        assert kept and position_of(kept[0][0]) >= before
