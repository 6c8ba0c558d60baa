"""The verl.plugins entry point registers our agent loop in a fresh process (as in a Ray worker)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

# Only `import verl`: the plugin module must arrive through the entry point, nothing else.
PROBE = """
import json, sys, verl
loaded_by_verl = "r1ci_verl.plugin" in sys.modules
from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
print(json.dumps([loaded_by_verl, _agent_loop_registry.get("r1ci_code_interpreter")]))
"""


def run_fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)


def test_entry_point_is_declared():
    names = {ep.name: ep.value for ep in entry_points(group="verl.plugins")}
    assert names.get("r1ci") == "r1ci_verl.plugin"


def test_plain_import_of_verl_registers_the_loop_in_a_fresh_process():
    proc = run_fresh(PROBE)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded_by_verl, registration = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded_by_verl is True
    assert registration == {"_target_": "r1ci_verl.rollout.agent_loop.CodeInterpreterAgentLoop"}


def test_failed_registration_is_logged_loudly(monkeypatch, caplog):
    import r1ci_verl.plugin as plugin

    monkeypatch.setattr(plugin, "REGISTERING_MODULES", ("r1ci_verl.no_such_module",))
    with caplog.at_level("ERROR", logger="r1ci_verl.plugin"):
        assert plugin.register_all() == ["r1ci_verl.no_such_module"]
    assert "r1ci_verl.no_such_module" in caplog.text
    assert caplog.records[0].levelname == "ERROR"
