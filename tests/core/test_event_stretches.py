"""Reading a run's log as a person does: stretches of text deltas as one group."""

from llmtool.events import Completed, Metrics, Started, TextDelta, Usage, stretches


def test_consecutive_text_deltas_form_one_group_every_other_event_its_own() -> None:
    events = [Started(run_id="r", model="m"), TextDelta(text="a"), TextDelta(text="b"), Usage(),
              TextDelta(text="c"), Completed(finish_reason="stop", text="abc", metrics=Metrics())]
    groups = stretches(events)
    assert [(index, [e.kind for e in group]) for index, group in groups] == [
        (0, ["started"]), (1, ["text", "text"]), (3, ["usage"]), (4, ["text"]), (5, ["completed"])]
    assert stretches([]) == []
