"""``Pipeline``, ``Stage`` and ``Step``: the topology a run follows.

Everything that can be checked without running is checked when the
``Pipeline`` is built, with a ``DefinitionError`` naming the pipeline, stage
and step at fault, so a broken definition never gets as far as a run. How to
call each action (sync or async, with or without the step context) is worked
out here once, not at every call.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from .errors import DefinitionError
from .executors import check_executor


def _call_shape(fn: Callable, what: str, max_args: int) -> tuple[bool, int]:
    """(is_async, how many positional args to pass: 1 or 2) for a user callable."""
    if not callable(fn):
        raise DefinitionError(f"{what}: must be callable, got {type(fn).__name__}: {fn!r}")
    # Callable objects with an ``async def __call__`` count as async too.
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return is_async, max_args
    positional = [
        p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return is_async, max_args
    if not positional:
        raise DefinitionError(f"{what}: must accept the state as its first argument")
    required = [p for p in positional if p.default is p.empty]
    if len(required) > max_args:
        raise DefinitionError(
            f"{what}: takes {len(required)} required arguments, at most {max_args} are passed"
        )
    return is_async, min(len(positional), max_args)


_latest: dict[str, weakref.ref] = {}  # pipeline id -> the newest definition built with it


class StageInfo(NamedTuple):
    """One stage as a walk meets it: its address (tuple and ``"a/b"`` key), itself, its pipeline."""

    address: tuple
    key: str
    stage: Stage
    pipeline: Pipeline


class Step:
    """One unit of work: ``action(state)`` or ``action(state, ctx)`` returning a patch or None."""

    __slots__ = ("id", "action", "label", "is_async", "nargs", "executor")

    def __init__(self, id: str, action: Callable, *, label: str | None = None, executor=None):
        self.id = id
        self.action = action
        self.label = label if label is not None else id
        check_executor(executor, f"step {id!r} executor")
        self.executor = executor
        self.is_async = False
        self.nargs = 2

    def __repr__(self) -> str:
        return f"Step({self.id!r})"


class Stage:
    """Sequential steps (or a sub-pipeline) that commit together, then a router decides."""

    __slots__ = (
        "id", "steps", "label", "order", "router", "routes", "pipeline",
        "router_async", "router_nargs", "executor", "sets_executor",
    )

    def __init__(
        self,
        id: str,
        steps: Iterable[Step] = (),
        *,
        label: str | None = None,
        order: float | None = None,
        router: Callable | None = None,
        routes: Iterable[str] = (),
        pipeline: Pipeline | None = None,
        executor=None,
    ):
        self.id = id
        check_executor(executor, f"stage {id!r} executor")
        self.executor = executor
        self.steps = tuple(steps) if steps is not None else ()
        self.label = label if label is not None else id
        self.order = order
        self.router = router
        if isinstance(routes, str):
            routes = (routes,)
        try:
            self.routes = tuple(routes) if routes is not None else ()
        except TypeError:
            raise DefinitionError(
                f"stage {id!r}: routes must be stage ids (a list of str), got {type(routes).__name__}: {routes!r}"
            ) from None
        self.pipeline = pipeline
        self.router_async = False
        self.router_nargs = 2
        # Whether this stage or one of its steps says where sync steps run (else: the drive's default).
        self.sets_executor = executor is not None or any(
            isinstance(s, Step) and s.executor is not None for s in self.steps)

    @property
    def kind(self) -> str:
        """``"steps"`` for a stage of steps, ``"pipeline"`` for a stage that runs a sub-pipeline."""
        return "pipeline" if self.pipeline is not None else "steps"

    def __repr__(self) -> str:
        return f"Stage({self.id!r}, {self.kind})"


def _check_id(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise DefinitionError(f"{what}: id must be a non-empty str, got {value!r}")
    if "/" in value:
        raise DefinitionError(f"{what}: id {value!r} may not contain '/' (used in stage addresses)")


class Pipeline:
    """Ordered stages; ``Pipeline(id, steps=[...])`` makes one stage per step."""

    def __init__(
        self,
        id: str,
        stages: Iterable[Stage] | None = None,
        *,
        steps: Iterable[Step] | None = None,
        max_transitions: int = 10_000,
    ):
        _check_id(id, "pipeline")
        self.id = id
        if stages is not None and steps is not None:
            raise DefinitionError(f"pipeline {id!r}: give stages or steps, not both")
        if steps is not None:
            steps = list(steps)
            for s in steps:
                if not isinstance(s, Step):
                    raise DefinitionError(f"pipeline {id!r}: steps must be Step objects, got {s!r}")
            stages = [Stage(s.id, steps=[s], label=s.label) for s in steps]
        stages = list(stages or ())
        if not stages:
            raise DefinitionError(f"pipeline {id!r} has no stages")
        if isinstance(max_transitions, bool) or not isinstance(max_transitions, int) or max_transitions < 1:
            raise DefinitionError(f"pipeline {id!r}: max_transitions must be an int >= 1, got {max_transitions!r}")
        self.max_transitions = max_transitions
        self.stages: tuple[Stage, ...] = tuple(stages)
        self._validate()
        keyed = sorted(
            enumerate(self.stages), key=lambda p: (p[1].order if p[1].order is not None else p[0], p[0])
        )
        self.ordered: tuple[Stage, ...] = tuple(s for _, s in keyed)
        self.position: dict[str, int] = {s.id: i for i, s in enumerate(self.ordered)}
        _latest[id] = weakref.ref(self)

    @property
    def superseded(self) -> bool:
        """True once a newer ``Pipeline`` with the same id was built in this process (a re-run cell)."""
        return self.newer is not None

    @property
    def newer(self) -> Pipeline | None:
        """The newest ``Pipeline`` with this id built in this process, when it is not this one (else None)."""
        newest = _latest.get(self.id)
        newer = newest() if newest is not None else None
        return newer if newer is not self else None

    def _validate(self) -> None:
        pid = self.id
        seen: set[str] = set()
        for stage in self.stages:
            if not isinstance(stage, Stage):
                raise DefinitionError(f"pipeline {pid!r}: stages must be Stage objects, got {stage!r}")
            _check_id(stage.id, f"pipeline {pid!r}, stage")
            where = f"pipeline {pid!r}, stage {stage.id!r}"
            if stage.id in seen:
                raise DefinitionError(f"pipeline {pid!r}: duplicate stage id {stage.id!r}")
            seen.add(stage.id)
            if stage.order is not None and (
                isinstance(stage.order, bool) or not isinstance(stage.order, (int, float))
            ):
                raise DefinitionError(f"{where}: order must be a number, got {stage.order!r}")
            if stage.pipeline is not None:
                if stage.steps:
                    raise DefinitionError(f"{where}: has both steps and a pipeline; give one")
                if not isinstance(stage.pipeline, Pipeline):
                    raise DefinitionError(f"{where}: pipeline must be a Pipeline, got {stage.pipeline!r}")
                if stage.pipeline is self or self in stage.pipeline.descendants():
                    raise DefinitionError(f"{where}: pipeline {stage.pipeline.id!r} contains itself")
            elif not stage.steps:
                raise DefinitionError(f"{where}: has no steps and no pipeline")
            step_ids: set[str] = set()
            for step in stage.steps:
                if not isinstance(step, Step):
                    raise DefinitionError(f"{where}: steps must be Step objects, got {step!r}")
                _check_id(step.id, f"{where}, step")
                if step.id in step_ids:
                    raise DefinitionError(f"{where}: duplicate step id {step.id!r}")
                step_ids.add(step.id)
                step.is_async, step.nargs = _call_shape(step.action, f"{where}, step {step.id!r} action", 2)
            if stage.router is not None:
                stage.router_async, stage.router_nargs = _call_shape(stage.router, f"{where}, router", 2)
        for stage in self.stages:
            for target in stage.routes:
                if target not in seen:
                    raise DefinitionError(
                        f"pipeline {pid!r}, stage {stage.id!r}: route target {target!r} does not exist "
                        f"(stages: {', '.join(sorted(seen))})"
                    )

    def walk(self, prefix: tuple = ()) -> Iterator[StageInfo]:
        """Every stage in run order, sub-pipeline stages right after their parent.

        The one walk over a pipeline: graphs, widgets and the engine's address
        checks all read stages through it.
        """
        for stage in self.ordered:
            addr = prefix + (stage.id,)
            yield StageInfo(addr, "/".join(addr), stage, self)
            if stage.pipeline is not None:
                yield from stage.pipeline.walk(addr)

    def edges(self) -> Iterator[tuple[StageInfo, StageInfo, str]]:
        """``(from, to, kind)`` for every edge between stages of the same level:
        ``"next"`` (run order) and ``"route"`` (a router's declared target)."""
        for info in self.walk():
            pipe, stage, prefix = info.pipeline, info.stage, info.address[:-1]
            i = pipe.position[stage.id]
            targets = [(pipe.ordered[i + 1], "next")] if i + 1 < len(pipe.ordered) else []
            targets += [(pipe.stage(t), "route") for t in stage.routes]
            for target, kind in targets:
                addr = prefix + (target.id,)
                yield info, StageInfo(addr, "/".join(addr), target, pipe), kind

    def descendants(self) -> list[Pipeline]:
        """Every sub-pipeline inside this one, at any depth, in walk order."""
        return [info.stage.pipeline for info in self.walk() if info.stage.pipeline is not None]

    def stage(self, stage_id: str) -> Stage:
        """The stage ``stage_id`` of this pipeline's own level (a ``KeyError`` naming it when there is none)."""
        i = self.position.get(stage_id)
        if i is None:
            raise KeyError(f"pipeline {self.id!r} has no stage {stage_id!r}")
        return self.ordered[i]

    def resolve(self, address: tuple) -> list[Stage]:
        """The stages along an address like ``("train", "fit")``; KeyError names the culprit."""
        if not address:
            raise KeyError(f"empty stage address for pipeline {self.id!r}")
        pipe, chain = self, []
        for i, sid in enumerate(address):
            if pipe is None:
                raise KeyError(
                    f"stage {'/'.join(address[:i])!r} of pipeline {self.id!r} is not a sub-pipeline stage"
                )
            stage = pipe.stage(sid)
            chain.append(stage)
            pipe = stage.pipeline
        return chain

    def addresses(self, prefix: tuple = ()) -> list[tuple]:
        """Every stage address in run order, sub-pipeline stages after their parent."""
        return [info.address for info in self.walk(prefix)]

    def leaves(self) -> list[str]:
        """Addresses (``"train/fit"``) of the stages that run steps, in run order."""
        return [info.key for info in self.walk() if info.stage.pipeline is None]

    def to_networkx(self):
        """The stage graph as a ``networkx.DiGraph`` (nodes by address, with label, kind and order; edges with their kind)."""
        from ..graph import to_networkx

        return to_networkx(self)

    def to_graphviz(self):
        """The stage graph as a ``graphviz.Digraph`` (``.source`` is its DOT text; rendering needs the ``dot`` program)."""
        from ..graph import to_graphviz

        return to_graphviz(self)

    def _repr_svg_(self):
        from ..graph import to_svg

        return to_svg(self)

    def __repr__(self) -> str:
        return f"Pipeline({self.id!r}, stages=[{', '.join(s.id for s in self.ordered)}])"
