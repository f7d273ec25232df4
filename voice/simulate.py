"""``python -m voice.simulate FILE.wav``: the user's command, kept where it always was.

The simulator itself is evaluation code and lives in ``evals/voice/simulate.py``; this module
only starts it (tests/test_boundaries.py allows this one import of ``evals`` from ``voice/``).
"""

if __name__ == "__main__":
    from evals.voice.simulate import main

    raise SystemExit(main())
