"""Where the kernel's stop button may raise ``KeyboardInterrupt`` into a run (SPEC 13): only inside a sync
step's own code running inline, never in the engine's work around it (a listener it calls, a patch it merges),
which would stop that work halfway instead of the step."""

import sys

from pipenb import Pipeline, PipelineFactory, Stage, Step
from pipenb.core import interrupt


def test_a_step_s_own_code_is_interruptible_and_a_listener_called_between_steps_is_not():
    seen = {}

    def helper():  # code the step calls: still the step's
        seen.setdefault("helper", interrupt.in_sync_step(sys._getframe()))

    def one(state):
        seen["step"] = interrupt.in_sync_step(sys._getframe())
        helper()
        return {"one": 1}

    def two(state, ctx):  # a step that takes its StepContext is called through another frame
        seen["step with ctx"] = interrupt.in_sync_step(sys._getframe())
        return {"two": 1}

    def listener(event):
        seen.setdefault("listener", interrupt.in_sync_step(sys._getframe()))

    pipe = Pipeline("frames", stages=[Stage("s", steps=[Step("one", one), Step("two", two)])])
    ctx = PipelineFactory(pipe).prepare_sync().unwrap()
    ctx.on("step:success", listener)
    assert ctx.run_sync().unwrap().status == "completed"
    assert seen == {"step": True, "helper": True, "step with ctx": True, "listener": False}
    assert not interrupt.in_sync_step(sys._getframe())  # no run at all
