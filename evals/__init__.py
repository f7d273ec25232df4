"""Evaluation code: benchmarks, evaluations and the simulator, apart from the runtime packages.

``evals/voice/`` measures the pipeline in-process and, like ``voice/``, never imports Django;
``evals/triage/`` measures the platform through its sockets and Django (daphne on loopback, two
nodes behind HAProxy, the clinician's alert and hand-over). ``evals/speech.py`` is the
deterministic test speech both use, ``evals/browser.py`` the headless Chromium the browser
benchmarks and tests launch. The runtime packages (``voice``, ``clinical_rules``,
``triage``) never import this package (tests/test_boundaries.py).
"""
