"""``python -m pipenb report FILE.sqlite RUN_ID -o out.html``: a run's report from a shell.

A run kept in a SQLite file can be looked back at without a notebook or the
code that defined it: the report is drawn from what the file holds (SPEC 14).
Errors name the file or the run and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipenb", description="pipenb tools")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="write one self-contained HTML page about a run in a SQLite file")
    rep.add_argument("file", help="the SQLite file the run's store wrote (SqliteStore.factory(path))")
    rep.add_argument("run_id", help="the run's id")
    rep.add_argument("-o", "--output", help="the HTML file to write (default: standard output)")
    rep.add_argument("--pipeline", metavar="MODULE:NAME",
                     help="import this Pipeline to draw its whole graph (default: the stages the run reached)")
    return parser


def _pipeline(spec: str):
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"--pipeline wants MODULE:NAME, got {spec!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"--pipeline {spec}: {exc}") from None


def report(args) -> int:
    from .report import report_html, write_report
    from .report_source import ReportError, from_sqlite

    try:
        source = from_sqlite(args.file, args.run_id)
        if args.pipeline:
            source.pipeline = _pipeline(args.pipeline)
    except (ReportError, ValueError) as exc:
        print(f"pipenb report: {exc}", file=sys.stderr)
        return 2
    page = report_html(source)
    if args.output:
        try:
            write_report(page, args.output)
        except OSError as exc:
            print(f"pipenb report: cannot write {args.output}: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.output} (run {args.run_id}, {len(source.history)} records)", file=sys.stderr)
    else:
        sys.stdout.write(page)
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    return report(args)


if __name__ == "__main__":
    sys.exit(main())
