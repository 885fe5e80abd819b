"""Route declarations: every public route states its operation once, next to its handler.

    @bp.post("/projects")
    @openapi.operation("Create a project", tag="Projects", body=ProjectIn,
                       response=ProjectCreatedOut, status=201, errors=(409,))
    def create_project() -> ResponseReturnValue: ...

The OpenAPI document of the whole public API (``bugnet_gateway.openapi``) is built from these
declarations and the pydantic models / TypedDicts they name: request bodies are the models the
handlers parse (``web.json_body``), responses are the types the view functions return.

Invariant (checked when ``BUGNET_CHECK_RESPONSES=1``, as in the test suite): a declared route
parses exactly the body and query models it declares, and every success response it produces
matches the documented schema, status included, with no undocumented field. So the whole test
suite proves the document against the code, and the two cannot drift apart.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter, WithJsonSchema

F = TypeVar("F", bound=Callable[..., Any])

OPERATIONS_ATTR = "__bugnet_operations__"
CHECK_ENV = "BUGNET_CHECK_RESPONSES"
REF_TEMPLATE = "#/components/schemas/{model}"

Auth = Literal["api_key"]

# Scalar types of response documents: what views return is already JSON (ISO strings, ids).
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Date = Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]
Uuid = Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]


@dataclass(frozen=True)
class Operation:
    """One documented operation.

    ``response`` is the type of the envelope's ``data`` (a pydantic model, a TypedDict, a list
    of them...); None documents an empty object. With ``paginated`` it is the type of one item
    and the list comes with ``meta``. ``body`` is a JSON body model, ``form`` a multipart one
    (fields typed ``bytes`` are file parts). ``auth="api_key"`` marks the SDK endpoints that
    take the project key; bearer/optional/none come from the gateway's route table.
    ``methods`` restricts the declaration to some of the rule's methods (a handler serving
    several methods may carry one declaration per method).
    """

    summary: str
    tag: str
    response: Any = None
    status: int = 200
    body: type[BaseModel] | None = None
    form: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    paginated: bool = False
    auth: Auth | None = None
    errors: tuple[int, ...] = ()
    description: str = ""
    methods: tuple[str, ...] | None = None
    body_optional: bool = False
    # False for the rare body served as-is, outside the envelope (the JWKS document, a file).
    envelope: bool = True
    # The success body's media type when it is not JSON (a file served as itself).
    media_type: str = "application/json"
    # Other success statuses of the same answer (a PUT answering 201 when it created).
    alt_statuses: tuple[int, ...] = ()
    # The type of a list's `meta` when it says more than the page (it then documents page,
    # limit, total and pages too); None: the standard PageMeta.
    meta: Any = None

    def covers(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


def operation(summary: str, *, tag: str, response: Any = None, status: int = 200,
              body: type[BaseModel] | None = None, form: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, paginated: bool = False,
              auth: Auth | None = None, errors: Iterable[int] = (), description: str = "",
              methods: Iterable[str] | None = None,
              body_optional: bool = False, envelope: bool = True,
              alt_statuses: Iterable[int] = (), meta: Any = None,
              media_type: str = "application/json") -> Callable[[F], F]:
    """Attach an :class:`Operation` to a view function (above or below the route decorator)."""
    op = Operation(summary=summary, tag=tag, response=response, status=status, body=body,
                   form=form, query=query, paginated=paginated, auth=auth,
                   errors=tuple(sorted(set(errors))), description=description,
                   methods=None if methods is None else tuple(m.upper() for m in methods),
                   body_optional=body_optional, envelope=envelope,
                   alt_statuses=tuple(sorted(set(alt_statuses))), meta=meta,
                   media_type=media_type)

    def attach(fn: F) -> F:
        ops: list[Operation] = list(getattr(fn, OPERATIONS_ATTR, ()))
        ops.append(op)
        setattr(fn, OPERATIONS_ATTR, tuple(ops))
        return fn

    return attach


def operations_of(fn: Callable[..., Any]) -> tuple[Operation, ...]:
    return tuple(getattr(fn, OPERATIONS_ATTR, ()))


def operation_for(fn: Callable[..., Any], method: str) -> Operation | None:
    for op in operations_of(fn):
        if op.covers(method):
            return op
    return None


def checking() -> bool:
    return os.environ.get(CHECK_ENV) == "1"


# --- response checking -------------------------------------------------------------------


class ContractViolation(AssertionError):
    """A route did something its declaration does not document (only raised when checking)."""


def warm_up() -> None:
    """When responses are checked, import the validator now rather than in the first
    requests (a fresh worker's request threads all waited on this import)."""
    if checking():
        import jsonschema

        jsonschema.Draft202012Validator({"type": "object"}).validate({})


@functools.cache
def _response_validator(op: Operation) -> Any:
    import jsonschema

    schema = success_schema_standalone(op)
    return jsonschema.Draft202012Validator(_closed(schema))


def success_schema_standalone(op: Operation) -> dict[str, Any]:
    """The success envelope's schema with its definitions inlined under ``$defs``."""
    data, defs = data_schema(op, ref_template="#/$defs/{model}")
    meta = None
    if op.meta is not None:
        meta = TypeAdapter(op.meta).json_schema(ref_template="#/$defs/{model}",
                                                mode="serialization")
        defs = {**defs, **meta.pop("$defs", {})}
    schema = envelope_schema(data, paginated=op.paginated, meta_ref="#/$defs/PageMeta",
                             meta_schema=meta)
    schema["$defs"] = {**defs, "PageMeta": PAGE_META_SCHEMA}
    return schema


def _closed(schema: Any) -> Any:
    """A copy where every object schema with listed properties forbids other properties."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items()}
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def check_response(op: Operation, status: int, body: Mapping[str, Any]) -> None:
    if status != op.status and status not in op.alt_statuses:
        raise ContractViolation(
            f"'{op.summary}' answered {status}, its declaration documents {op.status}")
    errors = sorted(_response_validator(op).iter_errors(body), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        raise ContractViolation(
            f"'{op.summary}' response does not match its documented schema at {where}: "
            f"{err.message}")


def check_model(op: Operation, kind: Literal["body", "query", "form"],
                model: type[BaseModel]) -> None:
    declared = getattr(op, kind)
    if declared is not model:
        raise ContractViolation(
            f"'{op.summary}' parses its {kind} as {model.__name__} but declares "
            f"{getattr(declared, '__name__', None)}")


# --- schemas -------------------------------------------------------------------------------

PAGE_META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "PageMeta",
    "required": ["page", "limit", "total", "pages"],
    "properties": {
        "page": {"type": "integer", "minimum": 1},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
        "total": {"type": "integer", "minimum": 0},
        "pages": {"type": "integer", "minimum": 0},
    },
}

EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


def data_schema(op: Operation, *, ref_template: str = REF_TEMPLATE,
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The schema of ``data`` and the definitions it refers to."""
    if op.response is None:
        item: dict[str, Any] = dict(EMPTY_OBJECT)
        defs: dict[str, Any] = {}
    else:
        item = TypeAdapter(op.response).json_schema(ref_template=ref_template,
                                                     mode="serialization")
        defs = item.pop("$defs", {})
    if op.paginated:
        return {"type": "array", "items": item}, defs
    return item, defs


def envelope_schema(data: dict[str, Any], *, paginated: bool, meta_ref: str,
                    meta_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"ok": {"const": True}, "data": data}
    required = ["ok", "data"]
    if paginated:
        props["meta"] = {"$ref": meta_ref} if meta_schema is None else meta_schema
        required.append("meta")
    return {"type": "object", "required": required, "properties": props}
