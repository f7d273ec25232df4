"""Evaluations of the platform through its sockets and Django: ``python -m evals.triage.<name>``."""
