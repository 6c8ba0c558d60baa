"""Training: the GRPO entry point with its curriculum sampler, and the multi-turn SFT dataset."""
