"""`r1ci data`: list the task suite, build RL/SFT parquet, write a new split file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from r1ci_verl.cli.errors import UsageError, check_output_path


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
    _add_split_options(build)
    build.add_argument("--source", help="read SymBench/BBH from the published folder layout: a directory, or "
                       "hf:OWNER/NAME[@REV] (e.g. hf:yongchao98/R1-Code-Interpreter-Data); default: the bundled copy")
    build.add_argument("--workers", type=int, default=1,
                       help="build tasks in N processes, same output (default: %(default)s)")  # fmt: skip
    build.add_argument("--quiet", action="store_true", help="no progress bar or summary table")
    build.set_defaults(func=_build, prog=build.prog)

    sft = commands.add_parser("sft", help="render teacher trajectories (JSONL) into sft.parquet")
    sft.add_argument("--trajectories", required=True, help="JSONL of trajectories (see docs/data.md)")
    sft.add_argument("--out", default="data/r1ci", help="output directory (default: %(default)s)")
    _add_split_options(sft)
    sft.add_argument("--timeout-s", type=float, help="execution time limit named in timeout notices")
    sft.set_defaults(func=_sft, prog=sft.prog)

    listing = commands.add_parser("list", help="the registered tasks with family, category and split")
    listing.add_argument("--families", nargs="+", help="task families (default: all)")
    _add_split_options(listing)
    listing.set_defaults(func=_list, prog=listing.prog)

    split = commands.add_parser("split", help="write a NEW split file from the registered tasks")
    split.add_argument("--out", required=True, help="YAML file to write (never inside the installed package)")
    split.add_argument("--name", help="the split's name (default: the file name without .yaml)")
    split.add_argument("--kind", choices=("random-by-task", "bbh-heldout"), default="random-by-task",
                       help="(default: %(default)s) random-by-task is the paper's kind, BBH on both sides; "
                       "bbh-heldout puts every BBH task on the test side")
    split.add_argument("--seed", type=int, default=0, help="seed of the sha256 task order (default: %(default)s)")
    split.add_argument("--test-tasks", type=int, default=37,
                       help="number of test tasks, paper: 37 (default: %(default)s)")  # fmt: skip
    split.add_argument("--exclude", nargs="+", default=[], metavar="TASK", help="tasks to leave out of the split")
    split.set_defaults(func=_split, prog=split.prog)


def _add_split_options(parser: argparse.ArgumentParser) -> None:
    from r1ci_verl.data.splits import DEFAULT_PRESET

    group = parser.add_mutually_exclusive_group()
    group.add_argument("--split", metavar="PRESET",
                       help=f"packaged split preset (default: {DEFAULT_PRESET}; see docs/data.md)")  # fmt: skip
    group.add_argument("--split-file", help="your own split YAML instead of a preset (its tasks are checked by name)")


def _load_split(args: argparse.Namespace):
    from r1ci_verl.data.splits import SplitError, load_split
    from r1ci_verl.data.tasks import list_tasks

    try:
        split = load_split(preset=args.split, path=args.split_file)
        split.check_names(list_tasks())
    except SplitError as exc:
        raise UsageError(str(exc)) from None
    return split


def _check_out_dir(out: str) -> Path:
    path = check_output_path(out, is_dir=True)
    for name in ("train.parquet", "test.parquet", "sft.parquet", "manifest.json"):
        if (path / name).is_dir():
            raise UsageError(f"--out {path}: {path / name} is a directory, expected a file")
    return path


def _build(args: argparse.Namespace) -> int:
    from r1ci_verl.data.build import BuildConfig, BuildError, build, plan_build
    from r1ci_verl.data.splits import SplitError
    from r1ci_verl.data.tasks import FAMILIES, TaskDataError

    out = _check_out_dir(args.out)
    config = BuildConfig(
        out=str(out),
        families=list(args.families or FAMILIES),
        tasks=args.tasks,
        splits=list(args.splits or ("train", "test")),
        max_per_task=args.max_per_task,
        seed=args.seed,
        split=args.split,
        split_file=args.split_file,
        source=args.source,
        workers=args.workers,
    )
    if args.quiet:  # the hub download of --source hf:... draws its own progress bars
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    try:
        plan = plan_build(config)  # every check before any question is generated
    except (BuildError, SplitError, TaskDataError) as exc:
        raise UsageError(str(exc)) from None
    for notice in plan.notices:
        print(notice, file=sys.stderr)
    try:
        manifest = build(plan, progress=not args.quiet)
    except (BuildError, TaskDataError) as exc:  # bad records found while reading the data
        raise UsageError(str(exc)) from None
    if not args.quiet:
        _print_summary(manifest, out)
    return 0


def _print_summary(manifest: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"r1ci data build: split {manifest['split']['name']}")
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

    out = _check_out_dir(args.out)
    trajectories = Path(args.trajectories)
    if not trajectories.is_file():
        raise UsageError(f"--trajectories {trajectories}: no such file" if not trajectories.exists()
                         else f"--trajectories {trajectories}: not a file")  # fmt: skip
    split = _split_of_the_build(args, out)
    try:
        info = build_sft(trajectories, out, split, timeout_s=args.timeout_s)
    except BuildError as exc:
        raise UsageError(str(exc)) from None
    print(f"{out / info['file']}: {info['rows']} rows, sha256 {info['sha256'][:16]}…")
    return 0


def _split_of_the_build(args: argparse.Namespace, out: Path):
    """The split SFT data must follow: the one the RL build in `out` used (its manifest says).

    Without --split/--split-file the build's preset is taken; a split that differs from the
    build's is refused, since its training side is not the build's training side.
    """
    from r1ci_verl.data.build import MANIFEST_NAME
    from r1ci_verl.data.splits import list_presets
    from r1ci_verl.data.tasks.records import sha256_file

    manifest_path = out / MANIFEST_NAME
    try:
        built = json.loads(manifest_path.read_text(encoding="utf-8"))["split"] if manifest_path.is_file() else None
    except (OSError, ValueError, KeyError, TypeError):
        built = None  # not a build of ours: nothing to match
    if built and not (args.split or args.split_file) and built.get("name") in list_presets():
        args.split = built["name"]
    split = _load_split(args)
    if built and split.path is not None and built.get("sha256") not in (None, sha256_file(split.path)):
        raise UsageError(
            f"--out {out}: holds a build made with split {built.get('name')!r}, not {split.name!r}; "
            f"render SFT data with the build's split ({manifest_path})"
        )
    return split


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from r1ci_verl.data.splits import SplitError
    from r1ci_verl.data.tasks import get_task, list_tasks

    split = _load_split(args)
    try:
        names = list_tasks(args.families)
    except ValueError as exc:
        raise UsageError(f"--families: {exc}") from None
    table = Table(title=f"registered tasks (split {split.name})")
    for column in ("task", "family", "category", "split"):
        table.add_column(column)
    for name in names:
        task = get_task(name)
        try:
            side = split.split_of(name)
        except SplitError:
            side = "[red]not in split[/red]"
        table.add_row(name, task.family, task.category, side)
    Console().print(table)
    return 0


def _split(args: argparse.Namespace) -> int:
    from r1ci_verl.data.assets import ASSETS_DIR
    from r1ci_verl.data.splits import SplitError, make_split, write_split
    from r1ci_verl.data.tasks import list_tasks

    out = check_output_path(args.out, suffixes=(".yaml", ".yml"))
    if out.resolve().is_relative_to(ASSETS_DIR.resolve()):
        raise UsageError(f"--out {out}: inside the installed package; write your split elsewhere")
    if out.exists():
        raise UsageError(f"--out {out}: already exists; a split never changes once used, write a new file")
    if args.test_tasks < 1:
        raise UsageError(f"--test-tasks must be >= 1, got {args.test_tasks}")
    registered = list_tasks()
    unknown = sorted(set(args.exclude) - set(registered))
    if unknown:
        raise UsageError(f"--exclude: unknown task(s) {unknown}; see `r1ci data list`")
    try:
        split = make_split(registered, name=args.name or out.stem, kind=args.kind, seed=args.seed,
                           n_test=args.test_tasks, excluded={n: "excluded with --exclude" for n in args.exclude})
        path = write_split(split, out)
    except SplitError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {path}: {len(split.train)} train, {len(split.test)} test tasks")
    return 0
