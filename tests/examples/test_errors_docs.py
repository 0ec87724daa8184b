"""docs/errors.md names every error class a user can catch."""

from __future__ import annotations

import jaguar_sdk._exceptions as exceptions
from tests.examples._support import REPO


def test_every_error_class_is_in_the_docs() -> None:
    docs = (REPO / "docs" / "errors.md").read_text(encoding="utf-8")
    classes = [
        name
        for name in exceptions.__all__
        if isinstance(getattr(exceptions, name), type)
        and issubclass(getattr(exceptions, name), exceptions.JaguarError)
    ]
    assert "ConfigurationError" in classes and len(classes) > 10
    missing = [name for name in classes if name not in docs]
    assert not missing, f"{missing} are not in docs/errors.md"
