"""What people read from the engine: a forgotten ``.unwrap()`` says so; records and history frames give
times as dates and durations as durations, never epoch floats (issue #20.1)."""

import datetime
import re
import time

import pandas as pd
import pytest

from pipenb import Pause, Pipeline, PipelineFactory, RunRecord, Stage, Step

from ..conftest import add


def test_forgetting_unwrap_says_to_call_unwrap(registry):
    factory = PipelineFactory(Pipeline("unw", steps=[Step("a", add("n"))]), registry=registry)
    result = factory.prepare_sync()
    with pytest.raises(AttributeError, match=r"\.unwrap\(\)") as err:
        result.run_sync()
    assert "RunContext" in str(err.value) and "run_sync" in str(err.value)
    failed = factory.prepare_sync(entry="nope")
    with pytest.raises(AttributeError, match=r"unwrap.*") as err:
        _ = failed.status
    assert "PrepareError" in str(err.value) and "nope" in str(err.value)
    assert result.unwrap().run_sync().unwrap().status == "completed"


def test_run_record_repr_gives_expiry_as_local_time_and_time_left():
    expires = time.time() + 90
    text = repr(RunRecord("r1", "p", "paused", "gate", expires, True))
    local = datetime.datetime.fromtimestamp(expires).strftime("%Y-%m-%d %H:%M:%S")
    assert local in text and "s left" in text
    assert not re.search(r"\d{10}\.\d", text), text  # no epoch float
    assert "expires_at=None" in repr(RunRecord("r2", "p", "completed", None, None, False))


def test_history_dataframe_has_timestamps_and_durations(registry):
    p = Pipeline(
        "hdf",
        stages=[
            Stage("a", steps=[Step("x", add("n"))]),
            Stage("b", steps=[Step("y", add("n"))], router=lambda s, r: Pause("a")),
        ],
    )
    ctx = PipelineFactory(p, registry=registry).prepare_sync().unwrap()
    before = pd.Timestamp.now(tz="UTC")
    ctx.run_sync()
    df = ctx.history.dataframe()
    assert isinstance(df.started[0], pd.Timestamp) and df.started[0].tzinfo is not None
    assert abs((df.started[0] - before).total_seconds()) < 60
    # Durations in seconds, a float column: sortable, summable, and no "0 days 00:00:00.000184" (polish pass).
    assert df.duration.dtype == "float64" and (df.duration >= 0).all()
    assert "days" not in df.to_string() and "days" not in df._repr_html_()
    assert df.duration.sum() == pytest.approx(sum(r.duration for r in ctx.history), abs=1e-5)
    assert df.groupby("address").duration.sum().index.tolist() == ["a", "b"]


def test_run_record_to_dict_gives_a_datetime_and_a_timedelta():
    d = RunRecord("r1", "p", "paused", "gate", time.time() + 90, True).to_dict()
    assert isinstance(d["expires_at"], datetime.datetime) and d["expires_at"].tzinfo is not None
    assert datetime.timedelta(seconds=80) < d["time_left"] <= datetime.timedelta(seconds=90)
    frame = pd.DataFrame([d])
    assert not any(frame[c].dtype == "float64" for c in frame.columns), frame.dtypes
