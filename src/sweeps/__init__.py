"""Sweeps: per-job records, the sweep's summary table, and single-run DDP children."""
