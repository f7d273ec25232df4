"""``python -m voice.safety_net_bench``: the user's command, kept where it always was.

The safety-net evaluation is evaluation code and lives in ``evals/voice/safety_net_bench.py``;
this module only starts it (tests/test_boundaries.py allows this one import of ``evals`` from
``voice/``).
"""

if __name__ == "__main__":
    from evals.voice.safety_net_bench import main

    raise SystemExit(main())
