"""r1ci_verl: the only layer that imports verl — agent loop, tool, sampler, data, CLI."""

__version__ = "0.1.0"
