"""`r1ci eval`: per-task accuracy of a model on the test questions; `r1ci eval compare A B`."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from r1ci_verl.cli.errors import UsageError, check_output_path
from r1ci_verl.cli.rollout_args import add_client_args, add_rule_args, check_rule_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="accuracy per task on the test split, with code-use statistics (and `eval compare`)",
        description="Answer each test question --n times on the training rules (the agent loop's turn engine, "
        "code run in the sandbox), score with reward_fns, and write <out>/report.json (every answer with its "
        "transcript and score), report.md and accuracy.png. Rerunning the same command resumes.",
    )
    p.add_argument("--data", default="data/r1ci/test.parquet",
                   help="RL parquet of the questions, from `r1ci data build` (default: %(default)s)")
    p.add_argument("--tasks", nargs="+", help="only these tasks of --data (e.g. bbh/navigate)")
    p.add_argument("--limit-per-task", type=int, help="only the first N questions of each task")
    p.add_argument("--out", help="output directory (required)")
    p.add_argument("--n", type=int, default=1, help="samples per question: mean@n and pass@n (default: %(default)s)")
    add_client_args(p, "served model name (openai) or local model path (transformers)")
    p.set_defaults(model=None)
    for action in p._actions:
        if action.dest == "model":
            action.required = False  # `eval compare` needs none; checked in run()
    add_rule_args(p, temperature=0.6)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="warnings and errors only")
    p.set_defaults(func=run, prog=p.prog)
    commands = p.add_subparsers(dest="eval_command", metavar="compare")
    c = commands.add_parser("compare", help="two eval reports side by side per task, with the difference")
    c.add_argument("a", help="report.json of the first run (e.g. before RL)")
    c.add_argument("b", help="report.json of the second run (e.g. after RL)")
    c.add_argument("--out", dest="compare_out", help="also write the markdown table here")
    c.set_defaults(func=run_compare, prog=c.prog)


def run(args: argparse.Namespace) -> int:
    from r1ci_verl.cli.rollout_args import build_client, command_logger, rollout_settings
    from r1ci_verl.evaluation import EvalConfig
    from r1ci_verl.potential.runner import load_questions, select_questions

    log = command_logger("eval", quiet=args.quiet)
    if not args.model:
        raise UsageError("--model is required")
    if not args.out:
        raise UsageError("--out is required (a directory for report.json, report.md, accuracy.png)")
    check_rule_args(args)
    if args.n < 1:
        raise UsageError(f"--n {args.n}: must be >= 1")
    if args.limit_per_task is not None and args.limit_per_task < 1:
        raise UsageError(f"--limit-per-task {args.limit_per_task}: must be >= 1")
    out = check_output_path(args.out, is_dir=True)
    try:
        questions = load_questions(args.data)
    except ValueError as exc:
        raise UsageError(f"--data {exc}") from None
    try:
        questions = select_questions(questions, args.tasks, args.limit_per_task)
    except ValueError as exc:
        raise UsageError(f"--tasks: {exc} (--data {args.data})") from None
    if not questions:
        raise UsageError(f"--data {args.data}: no questions")
    config = EvalConfig(n=args.n, concurrency=args.concurrency, seed=args.seed, rollout=rollout_settings(args))
    client = build_client(args)
    return asyncio.run(_evaluate(args, client, questions, config, out, log))


async def _evaluate(args, client, questions, config, out: Path, log) -> int:
    from r1ci_verl.cli.offline import client_and_sandbox, raise_if_failed
    from r1ci_verl.cli.rollout_args import run_settings
    from r1ci_verl.evaluation import bar_chart, evaluate, markdown, open_store, summarize
    from r1ci_verl.rollout.offline import write_json_atomic, write_text_atomic

    with_sandbox = config.rollout.rules.max_code_calls > 0
    async with client_and_sandbox(args, client, log, with_sandbox=with_sandbox) as open_session:
        out.mkdir(parents=True, exist_ok=True)
        with open_store(out / "samples.jsonl", run_settings(args)) as store:
            failures = await evaluate(questions, client, store, config, open_session, progress=not args.no_progress)
            wanted = {(q.index, s) for q in questions for s in range(config.n)}
            records = [r for r in store.records if (int(r["index"]), int(r["sample"])) in wanted]
    raise_if_failed(failures)
    records.sort(key=lambda r: (r["task"], int(r["index"]), int(r["sample"])))
    report = {
        "version": 1, "model": args.model, "data": str(args.data),
        "settings": {"n": config.n, "temperature": config.rollout.sampling.temperature,
                     "top_p": config.rollout.sampling.top_p, "max_code_calls": config.rollout.rules.max_code_calls,
                     "code_timeout_s": config.rollout.code_timeout_s, "max_tokens": config.rollout.budget,
                     "seed": config.seed},
        "usage": client.usage.summary(),
        "summary": summarize(records, config.n),
        "answers": records,
    }
    write_json_atomic(out / "report.json", report)
    write_text_atomic(out / "report.md", markdown(report))
    bar_chart(report, out / "accuracy.png")
    o = report["summary"]["overall"]
    log.info("%d answers to %d questions in %d tasks: mean@%d %.1f, pass@%d %.1f (mean over tasks); %s",
             o["answers"], o["questions"], o["tasks"], config.n, o["mean_at_n"], config.n, o["pass_at_n"],
             out / "report.md")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from r1ci_verl.evaluation import compare
    from r1ci_verl.evaluation.report import check_report
    from r1ci_verl.rollout.offline import write_text_atomic

    if args.compare_out:
        check_output_path(args.compare_out, suffixes=(".md",))
    reports = []
    for path in (args.a, args.b):
        if not Path(path).is_file():
            raise UsageError(f"{path}: no such file")
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: not JSON ({exc})") from None
        try:
            reports.append(check_report(data, path))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    table = compare(*reports, name_a=Path(args.a).parent.name or "A", name_b=Path(args.b).parent.name or "B")
    print(table, end="")
    if args.compare_out:
        write_text_atomic(args.compare_out, table)
    return 0
