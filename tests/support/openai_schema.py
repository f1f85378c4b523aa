"""Validate JSON the gateway produces against a schema of OpenAI's OpenAPI document.

The document lives beside the repository (``../shared/reference/openai-openapi.yaml``); it
is OpenAPI 3.1, whose schemas are JSON Schema 2020-12, so `jsonschema` checks them with
``$ref``s resolved inside the document. Tests that need it skip when it is absent.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

__all__ = ["SPEC_PATH", "validate"]

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "reference" / "openai-openapi.yaml"
_BASE = "urn:openai-openapi"


@functools.cache
def _registry() -> Any:
    import yaml
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    # shared/ sits beside the checkout here and in CI; a missing spec fails, never skips.
    assert SPEC_PATH.is_file(), f"OpenAI's OpenAPI document is not at {SPEC_PATH}"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # 1 s with libyaml, ~20 s without
    with SPEC_PATH.open(encoding="utf-8") as f:
        document = yaml.load(f, Loader=loader)
    return Registry().with_resource(_BASE, Resource.from_contents(document, DRAFT202012))


def validate(instance: Any, schema: str) -> None:
    """Raise `jsonschema.ValidationError` unless ``instance`` matches components/schemas/``schema``."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator({"$ref": f"{_BASE}#/components/schemas/{schema}"},
                                     registry=_registry())
    validator.validate(instance)
