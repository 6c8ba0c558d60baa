"""`r1ci data`: list the task suite, build RL/SFT parquet, write a new split version."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="task suite, train/test split and verl parquet")
    commands = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    build = commands.add_parser("build", help="write train.parquet / test.parquet and manifest.json")
    build.add_argument("--out", default="data/r1ci", help="output directory (default: %(default)s)")
    build.add_argument("--families", nargs="+", help="task families (default: all)")
    build.add_argument("--tasks", nargs="+", help="exact task names, e.g. symbench/game24 bbh/navigate")
    build.add_argument("--splits", nargs="+", choices=("train", "test"), help="which sides to write (default: both)")
    build.add_argument("--max-per-task", type=int, default=200, help="questions per task (default: %(default)s)")
    build.add_argument("--seed", type=int, default=0, help="seed for generated tasks (default: %(default)s)")
    build.add_argument("--split-version", type=int, help="packaged split version (default: current)")
    build.add_argument("--split-file", help="an explicit split YAML instead of a packaged version")
    build.add_argument("--symbench-hf-repo", help="read SymBench from this HF dataset repo instead of the bundled copy")
    build.add_argument("--symbench-hf-revision", help="revision of --symbench-hf-repo")
    build.add_argument("--workers", type=int, default=1, help="build tasks in N processes (default: %(default)s)")
    build.add_argument("--quiet", action="store_true", help="no progress bar or summary table")
    build.set_defaults(func=_build)

    sft = commands.add_parser("sft", help="render teacher trajectories (JSONL) into sft.parquet")
    sft.add_argument("--trajectories", required=True, help="JSONL of trajectories (see docs/data.md)")
    sft.add_argument("--out", default="data/r1ci", help="output directory (default: %(default)s)")
    sft.add_argument("--split-version", type=int, help="packaged split version (default: current)")
    sft.add_argument("--split-file", help="an explicit split YAML instead of a packaged version")
    sft.add_argument("--timeout-s", type=float, help="execution time limit named in timeout notices")
    sft.set_defaults(func=_sft)

    listing = commands.add_parser("list", help="the registered tasks with family, category and split")
    listing.add_argument("--families", nargs="+", help="task families (default: all)")
    listing.set_defaults(func=_list)

    split = commands.add_parser("split", help="write a NEW split version from the registered tasks")
    split.add_argument("--version", type=int, required=True, help="version number of the new split")
    split.add_argument("--seed", type=int, default=0, help="seed of the hash order (default: %(default)s)")
    split.add_argument("--out", help="file to write (default: the packaged location for --version)")
    split.set_defaults(func=_split)


def _build(args: argparse.Namespace) -> int:
    from r1ci_verl.data.build import BuildConfig, BuildError, build
    from r1ci_verl.data.splits import CURRENT_VERSION, SplitError
    from r1ci_verl.data.tasks import FAMILIES, TaskDataError

    config = BuildConfig(
        out=args.out,
        families=list(args.families or FAMILIES),
        tasks=args.tasks,
        splits=list(args.splits or ("train", "test")),
        max_per_task=args.max_per_task,
        seed=args.seed,
        split_version=args.split_version or CURRENT_VERSION,
        split_file=args.split_file,
        symbench_hf_repo=args.symbench_hf_repo,
        symbench_hf_revision=args.symbench_hf_revision,
        workers=args.workers,
    )
    try:
        manifest = build(config, progress=not args.quiet)
    except (BuildError, SplitError, TaskDataError, FileNotFoundError, KeyError) as exc:
        print(f"r1ci data build: error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        _print_summary(manifest, Path(args.out))
    return 0


def _print_summary(manifest: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"r1ci data build: split v{manifest['split']['version']}")
    for column in ("task", "family", "category", "split"):
        table.add_column(column)
    table.add_column("rows", justify="right")
    for name, info in sorted(manifest["tasks"].items(), key=lambda item: (item[1]["split"], item[0])):
        table.add_row(name, info["family"], info["category"], info["split"], str(info["rows"]))
    console = Console()
    console.print(table)
    for file, info in manifest["files"].items():
        console.print(f"{out / file}: {info['rows']} rows, sha256 {info['sha256'][:16]}…")
    console.print(f"{out / 'manifest.json'}")


def _sft(args: argparse.Namespace) -> int:
    from r1ci_verl.data.build import BuildError, build_sft
    from r1ci_verl.data.splits import SplitError, load_split

    try:
        split = load_split(version=args.split_version, path=args.split_file)
        info = build_sft(Path(args.trajectories), Path(args.out), split, timeout_s=args.timeout_s)
    except (BuildError, SplitError) as exc:
        print(f"r1ci data sft: error: {exc}", file=sys.stderr)
        return 1
    print(f"{Path(args.out) / info['file']}: {info['rows']} rows, sha256 {info['sha256'][:16]}…")
    return 0


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from r1ci_verl.data.splits import SplitError, load_split
    from r1ci_verl.data.tasks import get_task, list_tasks

    split = load_split()
    table = Table(title=f"registered tasks (split v{split.version})")
    for column in ("task", "family", "category", "split"):
        table.add_column(column)
    for name in list_tasks(args.families):
        task = get_task(name)
        try:
            side = split.split_of(name)
        except SplitError:
            side = "[red]not in split[/red]"
        table.add_row(name, task.family, task.category, side)
    Console().print(table)
    return 0


def _split(args: argparse.Namespace) -> int:
    from r1ci_verl.data.splits import SplitError, make_split, write_split
    from r1ci_verl.data.tasks import list_tasks

    try:
        path = write_split(make_split(list_tasks(), version=args.version, seed=args.seed), path=args.out)
    except SplitError as exc:
        print(f"r1ci data split: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0
