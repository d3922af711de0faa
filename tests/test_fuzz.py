"""Property-based fuzzing of every operation from the service's own OpenAPI schema (schemathesis).

Hypothesis generates requests that fit the schema (valid multipart bodies with
arbitrary bytes as "images", arrays of them) and requests that break it
(missing fields, wrong types, other content types). Whatever it sends, the
service must not answer 5xx, must answer only the statuses it documents, and
every answer must match the documented response model, errors included. The app
runs in-process (ASGI), with the shipped model loaded by its lifespan.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from service.config import Settings
from service.main import create_app

pytestmark = pytest.mark.slow

#: Per operation; the whole file runs in well under a minute on the 2-core machine.
MAX_EXAMPLES = 50

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings()))


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,  # a batch of generated images may take longer than Hypothesis' 200 ms default
    derandomize=True,  # the same examples on every run, so a failure is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_every_operation_answers_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
