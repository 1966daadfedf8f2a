"""Every JSON response of the API that a test gets is validated against the app's OpenAPI description."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from flask import Flask, Response, request
from jsonschema import Draft202012Validator

from server.blueprints.api import describe
from server.schemas import openapi_path


@dataclass
class ApiResponses:
    problems: list[str] = field(default_factory=list)
    checked: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    """(method, OpenAPI path, status) -> responses validated."""


def check_api_responses(app: Flask) -> ApiResponses:
    """Validate each API response `app` sends from now on; problems are collected, not raised (a test's own
    assertions come first)."""
    seen = ApiResponses()

    @app.after_request
    def _validate(resp: Response) -> Response:
        rule = request.url_rule
        if rule is None or not rule.endpoint.startswith("api.") or rule.endpoint == "api.openapi":
            return resp
        spec = describe(app)
        path, method = openapi_path(rule.rule), request.method.lower()
        where = f"{request.method} {request.path} -> {resp.status_code}"
        op = spec["paths"].get(path, {}).get(method)
        if op is None:
            seen.problems.append(f"{where}: the operation is not described")
            return resp
        described = op["responses"].get(str(resp.status_code))
        if described is None:
            seen.problems.append(f"{where}: status not described ({sorted(op['responses'])})")
            return resp
        if not resp.is_json:
            seen.problems.append(f"{where}: not JSON ({resp.mimetype})")
            return resp
        schema = dict(described["content"]["application/json"]["schema"], components=spec["components"])
        for err in Draft202012Validator(schema).iter_errors(resp.get_json()):
            seen.problems.append(f"{where}: {'/'.join(map(str, err.absolute_path))}: {err.message[:300]}")
        seen.checked[(request.method, path, resp.status_code)] += 1
        return resp

    return seen


def assert_valid(seen: ApiResponses) -> None:
    assert not seen.problems, "API responses that do not match the OpenAPI description:\n" + "\n".join(seen.problems)


