"""Views in people's words (issue #20.1): no engine field names in the checkpoint view, one line per
cause in an error, an abort that says where the step was running."""

import threading
from html import unescape
import re

from pipenb import Pipeline, PipelineFactory, Step
from pipenb.core.checkpoints import PipelineCheckpoint
from pipenb.display import checkpoint_html, error_html


def _text(markup: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", markup))


def test_checkpoint_view_uses_words_not_field_names():
    cp = PipelineCheckpoint("r", "p", ("train", "fit"), "fit", "Fit model", "2026-11-25T12:00:00.123Z")
    text = _text(checkpoint_html(cp))
    for jargon in ("container_bundle", "paused_at_stage_id", "paused_on", "resume_at", "T12:00:00.123Z"):
        assert jargon not in text
    assert "continues at" in text and "train/fit" in text and "memory only" in text
    saved = _text(checkpoint_html(cp.with_bundle({"artifacts": {"model": b""}})))
    assert "saved with the checkpoint: model" in saved


def test_a_cause_the_message_already_quotes_is_not_repeated(registry):
    def price(state):
        return {"r": state["prcie"]}

    ctx = PipelineFactory(Pipeline("dup", steps=[Step("price", price)]), registry=registry).prepare_sync().unwrap()
    error = ctx.run_sync().error
    text = _text(error_html(error))
    assert text.count("KeyError") == 1 and "caused by" not in text, text
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = ValueError("the real reason")
    assert "caused by" in _text(error_html(wrapped)) and "the real reason" in _text(error_html(wrapped))


def test_an_abort_says_where_the_step_was_running_in_words(registry):
    started, go = threading.Event(), threading.Event()

    def slow(state, ctx):
        started.set()
        go.wait(5)

    ctx = (
        PipelineFactory(Pipeline("ab", steps=[Step("slow", slow, executor="thread")]), registry=registry)
        .prepare_sync()
        .unwrap()
    )

    import asyncio

    async def scenario():
        task = ctx.start()
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        ctx.abort("test")
        res = await task
        go.set()
        return res

    res = asyncio.run(scenario())
    assert "on a worker thread" in str(res.error) and "ran on thread" not in str(res.error)
