"""Loggers that keep a run's history across `resume=`."""
