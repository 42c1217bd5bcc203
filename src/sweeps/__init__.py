"""Sweeps: per-job records, run directories read back, the sweep's tables (per job and over
seeds), and single-run DDP children."""
