"""Fixtures for the model-version tests (defined in ``versions_fixtures``)."""

from tests.versions.versions_fixtures import hub, tiny_pair, volume

__all__ = ["hub", "tiny_pair", "volume"]
