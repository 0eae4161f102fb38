"""Layer 3, runs: getting a teacher once, one distillation run, the presets, sweeps."""
