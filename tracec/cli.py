"""The `tracec` command line: instrument, run, show, optimize, report, apply, check, migrate.

Exit statuses: 0 ok, 1 changes or errors found, 2 usage error, 123 internal error.
`tracec run` instead exits with the program's own status.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from tracec.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, TracecError, UsageError

RUN_USAGE = "tracec run [-h] [--all] [--graph FILE] [-v] (SCRIPT [ARGS...] | -m MODULE [ARGS...])"
RUN_HELP = f"""usage: {RUN_USAGE}

Run a Python program with the project's modules instrumented and write its execution graph.

positional arguments:
  SCRIPT [ARGS...]   a script to run as __main__, like `python SCRIPT ARGS...`

options:
  -h, --help         show this help message and exit
  -m MODULE          run a module as __main__, like `python -m MODULE ARGS...`
  --all              trace every function of the project's modules, annotated or not
  --graph FILE       where to write the graph JSON (default: .tracec/graph.json in the project root)
  -v, --verbose      print the graph file and node count on stderr when done
"""


def _version() -> str:
    from tracec.project import tracec_version

    return tracec_version()


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracec",
        description="Trace-style generative optimization as a static source-transformation compiler.",
        epilog="Exit status: 0 ok, 1 changes or errors found, 2 usage error, 123 internal error; "
        "`tracec run` exits with the program's own status.",
    )
    parser.add_argument("--version", action="version", version=f"tracec {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    instrument = commands.add_parser(
        "instrument",
        help="write instrumented copies of Python files under a build directory",
        description="Write instrumented copies of PATHs (files or directories) mirroring the "
        "tree relative to the project root. Files needing no instrumentation are copied. Every output is "
        "compiled and checked to keep each statement on its line first; a file tracec cannot instrument "
        "is copied as written and named on one line ('path:line: internal error: ...; file left "
        "uninstrumented'), and the command exits 123 once the rest of the tree is built.",
    )
    instrument.add_argument("paths", nargs="+", metavar="PATH")
    instrument.add_argument("-o", "--output", metavar="DIR",
                            help="build directory (default: .tracec/build in the project root)")
    instrument.add_argument("--all", action="store_true", dest="all_functions",
                            help="instrument every function, annotated or not")
    instrument.add_argument("--diff", action="store_true",
                            help="print the unified diff original -> instrumented; write nothing")
    instrument.add_argument("--check", action="store_true",
                            help="exit 1 if the build directory is missing or stale; write nothing")
    instrument.add_argument("--fail-on-change", action="store_true",
                            help="write the build, but exit 1 if a file in it changed (for pre-commit)")
    instrument.add_argument("-j", "--jobs", type=_jobs, metavar="N",
                            help="worker processes (default: number of CPUs)")

    commands.add_parser(
        "run",
        help="run a program instrumented and write its execution graph",
        usage=RUN_USAGE,
        add_help=False,
    )

    show = commands.add_parser("show", help="render a graph JSON file as HTML")
    show.add_argument("file", metavar="FILE", help="graph JSON written by `tracec run`")
    show.add_argument("-o", "--output", metavar="OUT.html",
                      help="output file (default: FILE with an .html suffix)")

    optimize = commands.add_parser(
        "optimize",
        help="improve the trainable params and functions a task file exercises; write patches",
        description="Run TASK.py's examples recorded, send their feedback backward, ask an LLM for "
        "better values, keep what scores better, and write one reviewable patch per improved file "
        "under .tracec/patches/. Your source files are not touched (see `tracec apply`).",
    )
    optimize.add_argument("task", metavar="TASK.py", nargs="?",
                          help="defines train, optional val, run(example) and feedback(example, output)")
    optimize.add_argument("--pytest", metavar="TESTS", action="append",
                          help="instead of TASK.py: make these pytest tests pass (score = fraction passing); "
                          "each candidate runs in a subprocess (repeatable)")
    optimize.add_argument("-k", metavar="EXPR", dest="keyword",
                          help="with --pytest: only tests matching this pytest -k expression")
    optimize.add_argument("--model", metavar="M", help="litellm model string (default: [tool.tracec] "
                          "model, then $TRACEC_MODEL, then the embedded local/smollm2)")
    optimize.add_argument("--api-base", metavar="URL", help="OpenAI-compatible server for the model")
    optimize.add_argument("--steps", type=_jobs, metavar="N", help="optimization steps (default 5)")
    optimize.add_argument("--batch-size", type=_jobs, metavar="B", help="train examples per step (default 4)")
    optimize.add_argument("--seed", type=int, metavar="S", help="seed for minibatches and the model (default 0)")
    optimize.add_argument("--search", choices=("pareto", "greedy"),
                          help="pareto (default): a pool of candidates, parents from the per-example Pareto "
                          "front, children validated only after beating their parent on its minibatch; "
                          "greedy: one proposal per step on the best, each validated on all of val")
    optimize.add_argument("--proposals", type=_jobs, metavar="K",
                          help="children asked for per step, in parallel (default 2; greedy: 1)")
    optimize.add_argument("--repeats", type=_jobs, metavar="R",
                          help="runs per example of a stochastic task, scored by their mean (default: the "
                          "task's `repeats`, else 1)")
    optimize.add_argument("--budget-usd", type=float, metavar="X",
                          help="stop before the LLM cost would exceed X dollars")
    optimize.add_argument("--max-metric-calls", type=_jobs, metavar="N",
                          help="stop before passing N example evaluations in all (default: no limit)")
    optimize.add_argument("--max-llm-calls", type=_jobs, metavar="N",
                          help="stop before passing N model calls (default: no limit)")
    optimize.add_argument("--max-tokens", type=_jobs, metavar="T", help="completion tokens per LLM call")
    optimize.add_argument("--resume", metavar="RUN_ID", help="continue the run in .tracec/runs/RUN_ID")
    optimize.add_argument("--workers", type=_jobs, metavar="K", help="worker processes evaluating examples in parallel (default: the number of cores)")
    optimize.add_argument("--sandbox", action="store_true", default=None,
                          help="run the workers under bubblewrap: everything read-only but the scratch copies")
    optimize.add_argument("--backend", choices=("local", "ray"), default=None,
                          help="evaluate on this machine's worker processes (local, the default) or on Ray "
                          "actors (pip install 'tracec[ray]')")
    optimize.add_argument("--ray-address", metavar="ADDR",
                          help="the Ray cluster to join (default: start a local Ray instance and stop it after)")
    optimize.add_argument("--no-cache", action="store_true", help="do not reuse cached LLM replies")
    optimize.add_argument("--trial-timeout", type=float, metavar="S",
                          help="stop scoring a candidate after S seconds and reject it (default 60)")

    report = commands.add_parser("report", help="render an optimize run as one HTML page",
                                 description="One self-contained HTML page of an optimize run: the best score "
                                 "against metric calls and cost, the candidate tree (kept or rejected and why), "
                                 "the per-example Pareto front, and the diff from the baseline to the best.")
    report.add_argument("run_id", metavar="RUN_ID", nargs="?",
                        help="a folder of .tracec/runs/ (default: the newest run)")
    report.add_argument("-o", "--output", metavar="OUT.html",
                        help="output file (default: .tracec/runs/RUN_ID/report.html)")

    apply = commands.add_parser(
        "apply",
        help="apply (or check, or revert) patches written by `tracec optimize`",
        description="Apply PATCHes (default: every pending patch in .tracec/patches/, in order). A patch "
        "made against a different version of its file is refused, and so is any path git apply refuses "
        "(.git in any spelling, '..', NUL, absolute paths). Files are replaced atomically; two runs take "
        "turns through a lock on .tracec/.",
    )
    apply.add_argument("patches", nargs="*", metavar="PATCH")
    apply.add_argument("--check", action="store_true", help="report whether each patch applies; write nothing")
    apply.add_argument("--revert", action="store_true", help="undo applied PATCHes")

    check = commands.add_parser(
        "check",
        help="check annotations, pending patches and the repo setup; no LLM, runs no user code",
        description="Report, as PATH:LINE:COL: message, every tracec.param whose value cannot be written back, "
        "every @trainable function tracec cannot instrument or rewrite, instrumented output inside source "
        "folders, temp files an interrupted write left, pending patches that no longer apply, and a .tracec/ "
        "folder holding files git would track.",
        epilog="Exit status: 0 clean, 1 findings, 2 usage error, 123 internal error.",
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (default: the project root)")
    check.add_argument("--build-dir", metavar="DIR", help="where `tracec instrument -o` writes; instrumented "
                       "files there are expected (default: .tracec/build)")

    migrate = commands.add_parser(
        "migrate",
        help="rewrite Trace (trace-opt) annotations as tracec ones, as reviewable patches",
        description="Rewrite `node(..., trainable=True)`, `@bundle(trainable=True)` and `@model` in PATHs as "
        "tracec.param, @tracec.trainable and plain classes. Writes one patch per changed file under "
        ".tracec/patches/ (apply with `tracec apply`); your files are not touched.",
    )
    migrate.add_argument("paths", nargs="+", metavar="PATH")
    migrate.add_argument("--diff", action="store_true", help="print the unified diff instead of writing patches")
    return parser


def parse_run_args(argv: list[str]) -> argparse.Namespace:
    """Options up to SCRIPT or `-m MODULE`; everything after belongs to the program."""
    options = argparse.Namespace(script=None, module=None, graph=None, all_functions=False, verbose=False,
                                 args=[])
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg in ("-h", "--help"):
            sys.stdout.write(RUN_HELP)
            raise SystemExit(0)
        if arg == "--all":
            options.all_functions = True
        elif arg in ("-v", "--verbose"):
            options.verbose = True
        elif arg == "--graph" or arg.startswith("--graph="):
            value, index = _option_value(argv, index, "--graph")
            options.graph = value
        elif arg == "-m" or (arg.startswith("-m") and len(arg) > 2):
            value, index = _option_value(argv, index, "-m")
            options.module, options.args = value, argv[index + 1 :]
            return options
        elif arg == "--":
            index += 1
            break
        elif arg.startswith("-") and arg != "-":
            raise UsageError(f"unknown option {arg!r}")
        else:
            break
        index += 1
    if index >= len(argv):
        raise UsageError("expected SCRIPT or -m MODULE")
    options.script, options.args = argv[index], argv[index + 1 :]
    return options


def _option_value(argv: list[str], index: int, name: str) -> tuple[str, int]:
    arg = argv[index]
    if arg.startswith(name + "="):
        return arg[len(name) + 1 :], index
    if name == "-m" and len(arg) > 2:
        return arg[2:], index
    if index + 1 >= len(argv):
        raise UsageError(f"{name} needs a value")
    return argv[index + 1], index + 1


def _dispatch(argv: list[str]) -> int:
    """Every command is `tracec.commands.<name>.main(args) -> int`; only the module is imported."""
    if argv and argv[0] == "run":
        try:
            args = parse_run_args(argv[1:])
        except UsageError as exc:
            print(f"usage: {RUN_USAGE}\ntracec run: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        command = "run"
    else:
        args = build_parser().parse_args(argv)
        command = args.command
    return importlib.import_module(f"tracec.commands.{command}").main(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    prefix = f"tracec {argv[0]}" if argv and not argv[0].startswith("-") else "tracec"
    try:
        return _dispatch(argv)
    except TracecError as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:
        # `tracec instrument --diff . | head`: the reader left; stop quietly, like other tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("tracec: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{prefix}: error{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # the catch-all: one line, not a traceback
        if os.environ.get("TRACEC_DEBUG"):
            traceback.print_exc()
        print(f"tracec: internal error: {type(exc).__name__}: {exc} "
              "(set TRACEC_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
