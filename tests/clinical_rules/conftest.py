"""Fixtures for the clinical rules tests (plain Python: no Django, no models)."""

import pytest

from clinical_rules import PatientContext, load_ruleset


@pytest.fixture(scope="session")
def rs():
    return load_ruleset()


@pytest.fixture
def adult():
    return PatientContext(subject="self", age_band="18_to_64")
