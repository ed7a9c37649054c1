"""``ArtifactContainer``'s bookkeeping for durable stores (SPEC 15): what changed since the last commit, what was
not saved, and the clear error reading an artifact that did not survive a restart."""

import pytest

from pipenb import ArtifactContainer, ArtifactNotSavedError
from pipenb.core.artifacts import NotSaved


def test_unsaved_lists_each_changed_key_once_until_saved():
    c = ArtifactContainer()
    c.put("a", 1)
    c.put("b", 2, durable=False)
    c.put("a", 3)
    tick, items = c.unsaved()
    assert items == [("b", 2, False), ("a", 3, True)]
    c.put("c", 4)  # after the tick: stays unsaved
    c.saved(tick)
    assert c.unsaved()[1] == [("c", 4, True)]
    c.record("s/", {"step": {"x": 1}})
    tick, items = c.unsaved()
    assert [k for k, _, _ in items] == ["c", "s/step"]
    c.saved(tick)
    assert c.unsaved()[1] == []
    c.put("b", 5)  # put again, durable this time
    assert c.unsaved()[1] == [("b", 5, True)]


def test_saved_reports_each_skipped_key_once_and_forgets_it_once_saved():
    c = ArtifactContainer()
    c.put("lock", object())
    tick, _ = c.unsaved()
    assert c.saved(tick, {"lock": "cannot be pickled"}) == {"lock": "cannot be pickled"}
    assert c.not_saved() == {"lock": "cannot be pickled"}
    c.put("lock", object())
    tick, _ = c.unsaved()
    assert c.saved(tick, {"lock": "cannot be pickled"}) == {}  # said already
    c.put("lock", 1)
    tick, _ = c.unsaved()
    c.saved(tick, {})
    assert c.not_saved() == {}


def test_an_artifact_that_was_not_saved_is_a_clear_error_never_none():
    c = ArtifactContainer({"m": NotSaved("m", "put with durable=False", "run-7"), "ok": 1})
    assert c.not_saved() == {"m": "put with durable=False"}
    for read in (lambda: c.get("m"), lambda: c["m"], lambda: c.get("m", "default")):
        with pytest.raises(ArtifactNotSavedError, match=r"run run-7: artifact 'm' was not saved .*durable=False") as e:
            read()
        assert e.value.key == "m" and isinstance(e.value, KeyError)
    assert c.get("ok") == 1 and c.get("missing") is None
    c.put("m", 2)  # put again: readable again
    assert c["m"] == 2


def test_more_is_read_on_the_first_look_that_needs_it_and_never_overrides():
    calls = []

    def more():
        calls.append(1)
        return {"s/step": {"x": 1}, "model": "old"}

    c = ArtifactContainer({"model": "new"}, keep_log=True, more=more)
    assert c.get("model") == "new" and calls == []  # a hit needs nothing more
    c.put("late", 1)
    mark = c.mark()
    c.put("later", 2)
    assert c["s/step"] == {"x": 1} and calls == [1]
    assert sorted(c.keys()) == ["late", "later", "model", "s/step"] and calls == [1]  # read once
    assert sorted(c.as_of(mark).keys()) == ["late", "model", "s/step"]  # marks taken before the read still hold
