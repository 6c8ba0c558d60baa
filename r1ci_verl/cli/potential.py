"""`r1ci potential`: sample answers per training question, score them, write p and Π."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from r1ci_verl.cli.errors import UsageError, check_output_path
from r1ci_verl.cli.rollout_args import add_client_args, add_rule_args, check_rule_args

POTENTIAL_SUFFIXES = (".parquet", ".jsonl")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "potential",
        help="estimate each question's pass rate p and improvement potential 4p(1-p)",
        description="Sample answers per question with several prompting strategies on the training rules "
        "(the agent loop's turn engine), score them with reward_fns, and write p, potential and stage per "
        "question (keyed by extra_info.index). Rerunning the same command resumes an interrupted run.",
    )
    p.add_argument("--data", required=True, help="RL parquet file (rows with prompt, data_source, reward_model, extra_info)")
    p.add_argument("--out", required=True, help="potential file to write (.parquet or .jsonl)")
    p.add_argument("--samples", help="append-only file of scored answers (default: <out>.samples.jsonl)")
    add_client_args(p, "served model name (openai) or local model path (transformers)")
    p.add_argument("--strategies", default="text,code,free,guided", help="comma-separated strategy names (default: %(default)s)")
    p.add_argument("--samples-per-strategy", type=int, default=5, help="(default: %(default)s)")
    p.add_argument("--num-stages", type=int, default=4, help="curriculum stages (default: %(default)s)")
    p.add_argument("--partition", choices=("potential", "difficulty"), default="potential", help="(default: %(default)s)")
    add_rule_args(p, temperature=1.0)
    p.add_argument("--limit", type=int, help="only the first N questions (smoke runs); at least --num-stages")
    p.add_argument("--save-responses", action="store_true", help="keep each transcript in the samples file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="warnings and errors only")
    p.set_defaults(func=run, prog=p.prog)


def _check(args: argparse.Namespace) -> tuple[list[str], Path]:
    """Every check that does not need the data or the model: flags and output paths."""
    from r1ci_verl.potential.strategies import STRATEGIES

    check_rule_args(args)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise UsageError(f"--strategies {args.strategies}: unknown strategy {unknown[0] if unknown else '(none)'}; "
                         f"known: {', '.join(STRATEGIES)}")
    if args.num_stages < 1:
        raise UsageError(f"--num-stages {args.num_stages}: must be >= 1")
    if args.samples_per_strategy < 1:
        raise UsageError(f"--samples-per-strategy {args.samples_per_strategy}: must be >= 1")
    if args.limit is not None and args.limit < args.num_stages:
        raise UsageError(f"--limit {args.limit}: fewer questions than --num-stages {args.num_stages}; "
                         "every stage needs at least one question")
    check_output_path(args.out, suffixes=POTENTIAL_SUFFIXES)
    samples = check_output_path(args.samples or f"{args.out}.samples.jsonl", suffixes=(".jsonl",), flag="--samples")
    return strategies, samples


def run(args: argparse.Namespace) -> int:
    from r1ci_verl.cli.rollout_args import build_client, command_logger, rollout_settings
    from r1ci_verl.potential import PotentialConfig, load_questions

    log = command_logger("potential", quiet=args.quiet)
    strategies, samples_path = _check(args)
    try:
        questions = load_questions(args.data)[: args.limit]
    except ValueError as exc:
        raise UsageError(f"--data {exc}") from None
    if len(questions) < args.num_stages:
        raise UsageError(f"--data {args.data}: {len(questions)} question(s) for {args.num_stages} stages")
    settings = rollout_settings(args)
    config = PotentialConfig(
        strategies=strategies, samples_per_strategy=args.samples_per_strategy, num_stages=args.num_stages,
        partition_mode=args.partition, concurrency=args.concurrency, seed=args.seed, sampling=settings.sampling,
        rollout=settings, save_responses=args.save_responses,
    )
    client = build_client(args)
    return asyncio.run(_sample(args, client, questions, config, samples_path, log))


async def _sample(args, client, questions, config, samples_path, log) -> int:
    from r1ci_verl.cli.offline import client_and_sandbox, raise_if_failed, usage_line
    from r1ci_verl.cli.rollout_args import run_settings
    from r1ci_verl.potential import SampleStore, potential_table, sample_potential, write_table
    from r1ci_verl.potential.strategies import get_strategy

    runs_code = any(get_strategy(name).runs_code for name in config.strategies)
    async with client_and_sandbox(args, client, log, with_sandbox=runs_code) as open_session:
        with SampleStore(samples_path, settings=run_settings(args, strategies=list(config.strategies))) as store:
            failures = await sample_potential(
                questions, client, store, config, open_session=open_session, progress=not args.no_progress,
            )
            records = [r for r in store.records  # a larger earlier run may hold more samples than asked for
                       if r["strategy"] in config.strategies and int(r["sample"]) < config.samples_per_strategy]
    raise_if_failed(failures)
    write_table(potential_table(questions, records, config), args.out)
    log.info("wrote p and potential of %d questions to %s (%s)", len(questions), args.out, usage_line(client))
    return 0
