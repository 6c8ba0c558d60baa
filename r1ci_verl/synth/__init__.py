"""Teacher trajectories for the SFT warm start (`r1ci sft synth`)."""

from r1ci_verl.synth.runner import PAPER_MAX_PER_TASK, SynthConfig, select, steps_of, synthesize, yield_table

__all__ = ["PAPER_MAX_PER_TASK", "SynthConfig", "select", "steps_of", "synthesize", "yield_table"]
