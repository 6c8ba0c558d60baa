"""`r1ci potential`: sample answers per training question, score them, write p and Π."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "potential",
        help="estimate each question's pass rate p and improvement potential 4p(1-p)",
        description="Sample answers per question with several prompting strategies, score them with "
        "reward_fns, and write p, potential and stage per question (keyed by extra_info.index). "
        "Rerunning the same command resumes an interrupted run.",
    )
    p.add_argument("--data", required=True, help="RL parquet file (rows with prompt, data_source, reward_model, extra_info)")
    p.add_argument("--out", required=True, help="potential file to write (.parquet or .jsonl)")
    p.add_argument("--samples", help="append-only file of scored answers (default: <out>.samples.jsonl)")
    p.add_argument("--backend", choices=("openai", "transformers"), default="openai")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="openai backend: server URL")
    p.add_argument("--model", required=True, help="served model name (openai) or local model path (transformers)")
    p.add_argument("--tokenizer", help="openai backend: tokenizer whose chat template renders prompts (default: --model)")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key, if any")
    p.add_argument("--strategies", default="text,code,free,guided", help="comma-separated strategy names")
    p.add_argument("--samples-per-strategy", type=int, default=5)
    p.add_argument("--num-stages", type=int, default=4)
    p.add_argument("--partition", choices=("potential", "difficulty"), default="potential")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-tokens", type=int, default=2048, help="per generation call")
    p.add_argument("--max-code-calls", type=int, default=8)
    p.add_argument("--code-timeout", type=float, default=60.0, help="seconds per code execution")
    p.add_argument("--sandbox-backend", default="local", choices=("local", "e2b", "ray"))
    p.add_argument("--limit", type=int, help="only the first N questions (smoke runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-responses", action="store_true", help="keep each transcript in the samples file")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from r1ci_verl.potential import (
        PotentialConfig,
        SampleStore,
        load_questions,
        potential_table,
        sample_potential,
        write_table,
    )
    from r1ci_verl.potential.backends import SamplingConfig, create_backend
    from r1ci_verl.potential.rollout import RolloutLimits
    from r1ci_verl.potential.strategies import get_strategy

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the progress bar
    config = PotentialConfig(
        strategies=[s.strip() for s in args.strategies.split(",") if s.strip()],
        samples_per_strategy=args.samples_per_strategy,
        num_stages=args.num_stages,
        partition_mode=args.partition,
        concurrency=args.concurrency,
        seed=args.seed,
        sampling=SamplingConfig(temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens),
        limits=RolloutLimits(max_code_calls=args.max_code_calls, code_timeout_s=args.code_timeout),
        save_responses=args.save_responses,
    )
    questions = load_questions(args.data)[: args.limit]
    samples_path = Path(args.samples or f"{args.out}.samples.jsonl")
    if args.backend == "openai":
        from transformers import AutoTokenizer

        backend = create_backend(
            "openai",
            base_url=args.base_url,
            model=args.model,
            tokenizer=AutoTokenizer.from_pretrained(args.tokenizer or args.model),
            api_key=os.environ.get(args.api_key_env),
        )
    else:
        backend = create_backend("transformers", model_path=args.model)

    async def main() -> int:
        sandbox = None
        if any(get_strategy(name).runs_code for name in config.strategies):
            from tool_env import SandboxConfig, create_sandbox

            sandbox = create_sandbox(SandboxConfig(backend=args.sandbox_backend, timeout_s=args.code_timeout))
        try:
            with SampleStore(samples_path) as store:
                failures = await sample_potential(
                    questions, backend, store, config, sandbox=sandbox, progress=not args.no_progress
                )
                records = list(store.records)
        finally:
            await backend.aclose()
            if sandbox is not None:
                sandbox.close()
        if failures:
            logging.error("%d answers failed (see above); rerun the same command to retry them", failures)
            return 1
        write_table(potential_table(questions, records, config), args.out)
        logging.info("wrote p and potential of %d questions to %s", len(questions), args.out)
        return 0

    return asyncio.run(main())
