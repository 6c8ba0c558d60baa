"""`r1ci sft synth`: teacher trajectories for the SFT warm start, from any OpenAI-compatible server."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from r1ci_verl.cli.data import _add_split_options
from r1ci_verl.cli.errors import UsageError, check_output_path
from r1ci_verl.cli.rollout_args import add_client_args, add_rule_args, check_rule_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sft", help="SFT warm-start data (teacher trajectories)")
    parser.set_defaults(prog=parser.prog)
    commands = parser.add_subparsers(dest="sft_command", metavar="ACTION", required=True)
    p = commands.add_parser(
        "synth",
        help="sample teacher answers to training questions, keep the correct ones, write trajectory JSONL",
        description="Answer each training question several times with a teacher model on the training rules "
        "(the agent loop's turn engine, code run in the sandbox), varying the prompt; keep only answers "
        "reward_fns scores correct, drop duplicates, keep at most --max-per-task per task, and write the "
        "trajectory JSONL that `r1ci data sft` renders into sft.parquet. Test-side tasks are refused. "
        "Rerunning the same command resumes.",
    )
    p.add_argument("--data", required=True, help="RL parquet of TRAINING questions (from `r1ci data build`)")
    p.add_argument("--out", required=True, help="trajectory JSONL to write (.jsonl)")
    p.add_argument("--samples", help="append-only file of scored answers (default: <out>.samples.jsonl)")
    add_client_args(p, "served teacher model name (openai) or local model path (transformers)")
    p.add_argument("--samples-per-question", type=int, default=4, help="(default: %(default)s)")
    p.add_argument("--max-per-task", type=int, default=70,
                   help="kept trajectories per task, paper: 70 (default: %(default)s)")
    p.add_argument("--variants", default="free,guided,code",
                   help="prompt variants, taken in turn per sample (default: %(default)s)")
    p.add_argument("--limit-per-task", type=int, help="only the first N questions of each task")
    _add_split_options(p)  # which tasks are training tasks (the rest are refused)
    add_rule_args(p, temperature=0.7)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="warnings and errors only")
    p.set_defaults(func=run_synth, prog=p.prog)


def _refuse_test_tasks(questions, args) -> None:
    from r1ci_verl.data.splits import SplitError, load_split

    try:
        split = load_split(args.split, args.split_file)
    except (SplitError, OSError) as exc:
        raise UsageError(f"split: {exc}") from None
    for task in sorted({q.task for q in questions}):
        try:
            side = split.split_of(task)
        except SplitError as exc:
            raise UsageError(f"--data {args.data}: {exc}") from None
        if side != "train":
            raise UsageError(f"--data {args.data}: task {task} is on the {side} side of split {split.name}; "
                             "SFT data must come from training tasks only")


def run_synth(args: argparse.Namespace) -> int:
    from r1ci_verl.cli.rollout_args import build_client, command_logger, rollout_settings
    from r1ci_verl.potential.runner import load_questions, select_questions
    from r1ci_verl.synth import SynthConfig

    log = command_logger("sft synth", quiet=args.quiet)
    check_rule_args(args)
    for flag, value in (("--samples-per-question", args.samples_per_question), ("--max-per-task", args.max_per_task)):
        if value < 1:
            raise UsageError(f"{flag} {value}: must be >= 1")
    out = check_output_path(args.out, suffixes=(".jsonl",))
    samples = check_output_path(args.samples or f"{args.out}.samples.jsonl", suffixes=(".jsonl",), flag="--samples")
    try:
        config = SynthConfig(samples_per_question=args.samples_per_question, max_per_task=args.max_per_task,
                             variants=[v.strip() for v in args.variants.split(",") if v.strip()],
                             concurrency=args.concurrency, seed=args.seed, teacher=args.model,
                             rollout=rollout_settings(args))
    except ValueError as exc:
        raise UsageError(f"--variants {args.variants}: {exc}") from None
    if args.max_code_calls < 1:
        raise UsageError("--max-code-calls 0: teacher trajectories need code calls")
    try:
        questions = select_questions(load_questions(args.data), None, args.limit_per_task)
    except ValueError as exc:
        raise UsageError(f"--data {exc}") from None
    if not questions:
        raise UsageError(f"--data {args.data}: no questions")
    _refuse_test_tasks(questions, args)
    client = build_client(args)
    return asyncio.run(_synth(args, client, questions, config, out, samples, log))


async def _synth(args, client, questions, config, out: Path, samples: Path, log) -> int:
    from r1ci_verl.cli.offline import client_and_sandbox, raise_if_failed
    from r1ci_verl.cli.rollout_args import run_settings
    from r1ci_verl.rollout.offline import ResultStore, write_json_atomic, write_text_atomic
    from r1ci_verl.synth import select, synthesize, yield_table

    async with client_and_sandbox(args, client, log, with_sandbox=True) as open_session:
        with ResultStore(samples, ("index", "sample"), settings=run_settings(args)) as store:
            failures = await synthesize(questions, client, store, config, open_session,
                                        progress=not args.no_progress)
            records = [r for r in store.records if int(r["sample"]) < config.samples_per_question]
    raise_if_failed(failures)
    kept, yields = select(questions, records, config)
    write_text_atomic(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    table = yield_table(yields)
    write_json_atomic(out.with_name(out.stem + ".yield.json"), {"teacher": config.teacher, "tasks": yields,
                                                               "usage": client.usage.summary()})
    print(table, end="")
    log.info("kept %d trajectories in %d tasks: %s (render with `r1ci data sft --trajectories %s`)",
             len(kept), sum(1 for y in yields.values() if y["kept"]), out, out)
    return 0
