"""Twilio's own OpenAPI description of the 2010-04-01 API, as a checker for the fake.

The document lives outside the repository (``../shared/twilio/twilio_api_v2010.json``, MIT licence
beside it) and is read at test time, never copied: the point is to test against what Twilio
publishes, not against our own idea of it. It is loaded and indexed once per process.

What it checks, for a request that names an operation (path template + method):

* every form field is a property of the operation's ``application/x-www-form-urlencoded``
  schema, required fields are present, only array fields repeat;
* values fit their schema: integers are integers, booleans ``true``/``false``, enums (also behind
  ``$ref``), patterns and lengths (sids), absolute http(s) URLs where the format is ``uri``;
* path parameters fit their patterns (``CA`` + 32 hex), query parameters are declared.

The spec leaves some documented rules out; :data:`DOCUMENTED_RULES` adds them, each with its
source, so that a value Twilio would refuse or silently ignore is caught here and not in production.

Responses: a success answer must use a status code the operation declares and a body valid against
its schema (OpenAPI 3.0 ``nullable`` understood), with no property the schema does not know; an
error answer must look like Twilio's error body.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

#: ``/work/main/tests/twilio_fake/contract.py`` → ``/work/shared/twilio/…``: the shared folder is a
#: sibling of the repository.
SPEC_PATH = (
    Path(__file__).resolve().parents[3] / ".." / "shared" / "twilio" / "twilio_api_v2010.json"
)
_SPEC_URI = "urn:twilio-oai:api_v2010"
FORM = "application/x-www-form-urlencoded"

#: Rules from Twilio's documentation that the OpenAPI document does not express. Keyed by
#: operationId, then field name: the allowed values of a string (or of each array item).
DOCUMENTED_ENUMS: dict[str, dict[str, tuple[str, ...]]] = {
    "CreateCall": {
        # The spec types it as a plain string array but defines the very list as
        # components/schemas/call_enum_event (and the library's docstring lists the same four).
        "StatusCallbackEvent": ("initiated", "ringing", "answered", "completed"),
        # "Can be: `Enable` or `DetectMessageEnd`" (call resource docs / library docstring).
        "MachineDetection": ("Enable", "DetectMessageEnd"),
        # "Can be: `true` or `false`" (a string in the spec, not a boolean).
        "AsyncAmd": ("true", "false"),
    },
}

#: Groups of fields of which an operation needs exactly one (``exactly``) or at least one.
DOCUMENTED_RULES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    # "Url", "Twiml" or "ApplicationSid" says what the call does (error 21205 otherwise).
    "CreateCall": [("exactly", ("Url", "Twiml", "ApplicationSid"))],
    # A sender (From or MessagingServiceSid) and content (Body, MediaUrl or ContentSid).
    "CreateMessage": [
        ("at_least", ("From", "MessagingServiceSid")),
        ("at_least", ("Body", "MediaUrl", "ContentSid")),
    ],
}

#: What every error answer from the fake must look like (Twilio's legacy error body).
ERROR_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "more_info": {"type": "string"},
        "status": {"type": "integer"},
    },
}


class ContractUnavailable(Exception):
    """The OpenAPI document is not where the tests expect it."""


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    operation_id: str
    regex: re.Pattern[str]
    path_params: Mapping[str, Mapping[str, Any]]
    #: name → (schema, required)
    query_params: Mapping[str, tuple[Mapping[str, Any], bool]]
    #: None when the operation takes no request body.
    form_properties: Mapping[str, Mapping[str, Any]] | None
    form_required: frozenset[str]
    #: status code → JSON pointer to the body's schema in the document, or None for no body.
    responses: Mapping[int, str | None]

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.fullmatch(path)
        return m.groupdict() if m else None


@dataclass
class Contract:
    spec: Mapping[str, Any]
    source: Path
    operations: list[Operation] = field(default_factory=list)
    _by_segments: dict[int, list[Operation]] = field(default_factory=dict)
    _validators: dict[str, Any] = field(default_factory=dict)
    _schema_registry: Registry[Any] | None = None

    # -- lookup ------------------------------------------------------------------------------

    def find(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        for op in self._by_segments.get(path.count("/"), ()):
            if op.method == method.upper() and (params := op.match(path)) is not None:
                return op, params
        return None

    def knows_path(self, path: str) -> bool:
        return any(op.match(path) is not None for op in self._by_segments.get(path.count("/"), ()))

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"unsupported $ref {ref}")
            schema = self._at(ref)
        return schema

    # -- requests ----------------------------------------------------------------------------

    def check_request(
        self,
        op: Operation,
        path_params: Mapping[str, str],
        query: Sequence[tuple[str, str]],
        form: Sequence[tuple[str, str]],
        content_type: str | None,
    ) -> list[str]:
        where = f"{op.operation_id} ({op.method} {op.template})"
        return [
            *self._check_path(op, path_params, where),
            *self._check_query(op, query, where),
            *self._check_form(op, _group(form), content_type, where),
        ]

    def _check_path(self, op: Operation, path_params: Mapping[str, str], where: str) -> list[str]:
        problems: list[str] = []
        for name, value in path_params.items():
            problems += self._check_value(op.path_params[name], value, f"{where} path {name}")
        return problems

    def _check_query(
        self, op: Operation, query: Sequence[tuple[str, str]], where: str
    ) -> list[str]:
        problems: list[str] = []
        for name, values in _group(query).items():
            if name not in op.query_params:
                problems.append(f"{where}: query parameter {name!r} is not in the spec")
                continue
            schema, _ = op.query_params[name]
            for value in values:
                problems += self._check_value(schema, value, f"{where} query {name}")
        return problems

    def _check_form(
        self,
        op: Operation,
        fields: Mapping[str, list[str]],
        content_type: str | None,
        where: str,
    ) -> list[str]:
        """The body: its content type, each field, the required ones, the documented rules."""
        if op.form_properties is None:
            return [f"{where}: takes no form body, got fields {sorted(fields)}"] if fields else []
        problems: list[str] = []
        if fields and (content_type or "").split(";")[0].strip().lower() != FORM:
            problems.append(f"{where}: body must be {FORM}, got {content_type!r}")
        for name, values in fields.items():
            problems += self._check_field(op, op.form_properties, name, values, where)
        for name in sorted(op.form_required - fields.keys()):
            problems.append(f"{where}: required field {name!r} is missing")
        problems += _check_documented_rules(op, fields, where)
        return problems

    def _check_field(
        self,
        op: Operation,
        form_properties: Mapping[str, Mapping[str, Any]],
        name: str,
        values: Sequence[str],
        where: str,
    ) -> list[str]:
        """One form field, every value it was given: declared, repeated only if an array, each
        value valid against the schema (of the array's items) and any documented enum."""
        declared = form_properties.get(name)
        if declared is None:
            return [f"{where}: field {name!r} is not a property of the request body"]
        problems: list[str] = []
        schema = self.resolve(declared)
        is_array = schema.get("type") == "array"
        if len(values) > 1 and not is_array:
            problems.append(f"{where}: field {name!r} repeats but is not an array")
        item_schema = self.resolve(schema.get("items", {})) if is_array else schema
        documented = DOCUMENTED_ENUMS.get(op.operation_id, {}).get(name)
        for value in values:
            problems += self._check_value(item_schema, value, f"{where} field {name}")
            if documented is not None and value not in documented:
                problems.append(
                    f"{where} field {name}: {value!r} is not one of {list(documented)} "
                    "(Twilio documentation)"
                )
        return problems

    def _check_value(self, schema: Mapping[str, Any], value: str, where: str) -> list[str]:
        """A form or URL value is always text: check it as the server would parse it."""
        schema = self.resolve(schema)
        kind = schema.get("type")
        problems: list[str] = []
        if kind == "integer":
            if not re.fullmatch(r"-?\d+", value):
                problems.append(f"{where}: {value!r} is not an integer")
        elif kind == "number":
            try:
                float(value)
            except ValueError:
                problems.append(f"{where}: {value!r} is not a number")
        elif kind == "boolean":
            if value.lower() not in ("true", "false"):
                problems.append(f"{where}: {value!r} is not a boolean (true/false)")
        elif kind in ("string", None):
            if "enum" in schema and value not in schema["enum"]:
                problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
            if "pattern" in schema and not re.search(schema["pattern"], value):
                problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
            if "minLength" in schema and len(value) < schema["minLength"]:
                problems.append(f"{where}: {value!r} is shorter than {schema['minLength']}")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                problems.append(f"{where}: {value!r} is longer than {schema['maxLength']}")
            ignore_format = schema.get("x-twilio", {}).get("ignoreFormat", False)
            if schema.get("format") == "uri" and not ignore_format and not _absolute_url(value):
                problems.append(f"{where}: {value!r} is not an absolute http(s) URL")
        return problems

    # -- responses ---------------------------------------------------------------------------

    def check_response(self, op: Operation, status: int, body: bytes) -> list[str]:
        where = f"{op.operation_id} response {status}"
        if status >= 400:
            return self.check_error_body(body, where)
        if status not in op.responses:
            return [f"{where}: the spec declares only {sorted(op.responses)}"]
        ref = op.responses[status]
        if ref is None:
            return [f"{where}: must have no body"] if body else []
        try:
            payload = json.loads(body)
        except ValueError:
            return [f"{where}: body is not JSON"]
        problems = [
            f"{where}: {'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in self._validator(ref).iter_errors(payload)
        ]
        known = self.resolve(self._at(ref)).get("properties", {})
        if isinstance(payload, dict):
            problems += [
                f"{where}: property {k!r} is not in the schema" for k in payload if k not in known
            ]
        return problems

    def check_error_body(self, body: bytes, where: str) -> list[str]:
        try:
            payload = json.loads(body)
        except ValueError:
            return [f"{where}: error body is not JSON"]
        validator = OAS30Validator(ERROR_BODY_SCHEMA)
        return [f"{where}: error body: {e.message}" for e in validator.iter_errors(payload)]

    def _at(self, pointer: str) -> Mapping[str, Any]:
        node: Any = self.spec
        for part in pointer[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return dict(node)

    def _validator(self, ref: str) -> Any:
        if ref not in self._validators:
            self._validators[ref] = OAS30Validator(
                {"$ref": _SPEC_URI + ref}, registry=self._registry()
            )
        return self._validators[ref]

    def _registry(self) -> Registry[Any]:
        if self._schema_registry is None:
            resource: Resource[Any] = Resource.from_contents(
                dict(self.spec), default_specification=DRAFT4
            )
            self._schema_registry = Registry().with_resource(_SPEC_URI, resource)
        return self._schema_registry


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def _check_documented_rules(
    op: Operation, fields: Mapping[str, list[str]], where: str
) -> list[str]:
    """The groups of fields :data:`DOCUMENTED_RULES` asks exactly one or at least one of."""
    problems: list[str] = []
    for rule, group in DOCUMENTED_RULES.get(op.operation_id, []):
        present = [name for name in group if name in fields]
        if rule == "exactly" and len(present) != 1:
            problems.append(f"{where}: needs exactly one of {list(group)}, got {present}")
        if rule == "at_least" and not present:
            problems.append(f"{where}: needs one of {list(group)}")
    return problems


def _absolute_url(value: str) -> bool:
    # "URLs must contain a valid hostname (underscores are not permitted)" (Calls docs).
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "_" not in parts.netloc


def _pointer_escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = ""
    for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
        pattern += re.escape(literal)
        if name:
            pattern += rf"(?P<{name}>[^/]+?)"
    return re.compile(pattern)


def _index(spec: Mapping[str, Any], source: Path) -> Contract:
    contract = Contract(spec=spec, source=source)
    for template, item in spec["paths"].items():
        shared_params = item.get("parameters", [])
        for method, raw in item.items():
            if method not in ("get", "post", "put", "delete", "patch"):
                continue
            params = [*shared_params, *raw.get("parameters", [])]
            form_schema: Mapping[str, Any] | None = None
            body = raw.get("requestBody")
            if body is not None:
                form_schema = contract.resolve(body["content"][FORM]["schema"])
            responses: dict[int, str | None] = {}
            for code, answer in raw.get("responses", {}).items():
                content = answer.get("content", {}).get("application/json")
                responses[int(code)] = (
                    "#/"
                    + "/".join(
                        _pointer_escape(part)
                        for part in ("paths", template, method, "responses", code)
                    )
                    + "/content/application~1json/schema"
                    if content
                    else None
                )
            contract.operations.append(
                Operation(
                    method=method.upper(),
                    template=template,
                    operation_id=raw.get("operationId", f"{method} {template}"),
                    regex=_template_regex(template),
                    path_params={p["name"]: p["schema"] for p in params if p["in"] == "path"},
                    query_params={
                        p["name"]: (p["schema"], bool(p.get("required")))
                        for p in params
                        if p["in"] == "query"
                    },
                    form_properties=(
                        None if form_schema is None else dict(form_schema.get("properties", {}))
                    ),
                    form_required=frozenset(
                        () if form_schema is None else form_schema.get("required", ())
                    ),
                    responses=responses,
                )
            )
    # Literal segments win over parameters (…/Calls/FeedbackSummary.json before …/Calls/{Sid}.json).
    contract.operations.sort(key=lambda op: op.template.count("{"))
    for op in contract.operations:
        contract._by_segments.setdefault(op.template.count("/"), []).append(op)
    return contract


@functools.cache
def load_contract(path: Path = SPEC_PATH) -> Contract:
    """Parse and index the document (1.8 MB) once per process."""
    resolved = path.resolve()
    if not resolved.is_file():
        raise ContractUnavailable(str(resolved))
    with resolved.open(encoding="utf-8") as handle:
        return _index(json.load(handle), resolved)


def contract_or_skip(path: Path = SPEC_PATH) -> Contract:
    """The contract, or skip the test (fail it on CI, where a skip would hide a broken setup)."""
    try:
        return load_contract(path)
    except ContractUnavailable:
        message = (
            "the Twilio contract tests need ../shared/twilio/twilio_api_v2010.json "
            f"(looked for {path.resolve()})"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
