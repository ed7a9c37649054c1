"""pipenb: build, watch, pause and debug routing pipelines in Jupyter.

The engine (``pipenb.core``) is re-exported here; widgets live in
``pipenb.widgets`` and are imported only when used, so ``import pipenb``
stays fast and never pulls in pandas, ipywidgets or graphviz.
"""

from . import core, report, rich
from .core import *  # noqa: F403 - the engine's public names, listed once in core.__all__

__version__ = "0.1.0"

__all__ = [*core.__all__, "SqliteStore"]  # noqa: F405 - SqliteStore loads on first use (__getattr__)

rich.install()  # rich display of runs and results in IPython, wired from outside the engine
report.install()  # ctx.report(): the run report page, wired from outside the engine too


def __getattr__(name):
    # SqliteStore pulls in sqlite3 and pickle: load it on first use only.
    if name == "SqliteStore":
        from .stores.sqlite import SqliteStore

        return SqliteStore
    raise AttributeError(f"module 'pipenb' has no attribute {name!r}")
