"""Task verifiers registered by name, in the spirit of reasoning-gym's factory.

A verifier is ``fn(answer: str, reference: Reference) -> float | bool``: `answer` is the text
extracted from ``<<<...>>>``; the result counts as correct only when it equals 1.0 (True).
Names are namespaced by family: ``symbench/game24``, ``bbh/navigate``, ``reasoning_gym/sudoku``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

VerifierResult = Union[float, bool]
Verifier = Callable[[str, "Reference"], VerifierResult]

_VERIFIERS: dict[str, Verifier] = {}
_TIME_BUDGETS: dict[str, float] = {}
_version = 0  # bumped on every registration: worker processes forked earlier are stale
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reference:
    """What a verifier checks against: the task, a stored answer (may be None) and task data."""

    task: str
    answer: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


def register_verifier(
    name: str, fn: Verifier | None = None, *, overwrite: bool = False, time_budget_s: float | None = None
):
    """Register `fn` under `name`; usable as ``@register_verifier("my/task")``.

    `time_budget_s`: for verifiers that may run long (simulation, sympy, third-party scorers):
    scoring gives up on them after this many seconds and scores 0 (see reward_fns.scoring).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"verifier name must be a non-empty str, got {name!r}")
    if time_budget_s is not None and not time_budget_s > 0:
        raise ValueError(f"verifier {name!r}: time_budget_s must be > 0, got {time_budget_s!r}")

    def decorator(func: Verifier) -> Verifier:
        global _version
        if not callable(func):
            raise TypeError(f"verifier {name!r} must be callable, got {type(func).__name__}")
        if name in _VERIFIERS and not overwrite and _VERIFIERS[name] is not func:
            raise ValueError(f"verifier {name!r} is already registered ({_VERIFIERS[name].__module__})")
        _VERIFIERS[name] = func
        _version += 1
        if time_budget_s is not None:
            _TIME_BUDGETS[name] = float(time_budget_s)
        else:
            _TIME_BUDGETS.pop(name, None)
        return func

    return decorator(fn) if fn is not None else decorator


def get_verifier(name: str) -> Verifier:
    _load_builtin_verifiers()
    try:
        return _VERIFIERS[name]
    except KeyError:
        close = [n for n in _VERIFIERS if name.split("/")[-1] in n][:5]
        hint = f"; similar: {close}" if close else ""
        raise KeyError(f"no verifier registered for task {name!r}{hint}") from None


def has_verifier(name: str) -> bool:
    _load_builtin_verifiers()
    return name in _VERIFIERS


def get_time_budget(name: str) -> float | None:
    """Seconds a verifier may run before scoring gives up on it; None: no budget (fast verifiers)."""
    return _TIME_BUDGETS.get(name)


def registry_version() -> int:
    """Changes whenever a verifier is registered (see reward_fns.verifier_pool)."""
    return _version


def list_verifiers() -> list[str]:
    _load_builtin_verifiers()
    return sorted(_VERIFIERS)


_BUILTIN_MODULES = ("reward_fns.symbench", "reward_fns.bbh", "reward_fns.reasoning_gym_tasks")
_builtins_loaded = False
_builtins_lock = threading.RLock()  # reward workers score in threads: load once, before any lookup


def _load_builtin_verifiers() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _builtins_lock:
        if _builtins_loaded:
            return
        for module in _BUILTIN_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:  # a dependency of the module is missing: a real error
                    raise
                logger.warning("built-in verifier module %s is not available; its tasks are unregistered", module)
        _builtins_loaded = True


def load_user_module(spec: str) -> Any:
    """Import a user's module (dotted name or a .py file path) so its verifiers register.

    ``spec`` may end in ``:attr`` to return an attribute (e.g. a compute_score function).
    """
    target, _, attr = spec.partition(":") if not _is_windows_drive(spec) else (spec, "", "")
    if target.endswith(".py") or "/" in target:
        path = Path(target)
        if not path.is_file():
            raise FileNotFoundError(f"reward module file not found: {path}")
        mod_name = f"r1ci_user_reward_{abs(hash(path.resolve()))}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import reward module from {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AttributeError(f"{target} has no attribute {attr!r}") from None


def _is_windows_drive(spec: str) -> bool:
    return len(spec) > 2 and spec[1] == ":" and spec[2] in "\\/"
