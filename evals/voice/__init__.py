"""In-process evaluations of the voice pipeline (plain Python, no Django): ``python -m evals.voice.<name>``."""
