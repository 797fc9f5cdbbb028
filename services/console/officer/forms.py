"""Forms built from the message models' JSON Schemas, and bodies rebuilt from what was posted.

A form names each input by the field's path in the body (``routes.0.legs.0.origin``), the same
path the application layer's validation problems name, so each problem is shown beside its
input. A list of objects gets one entry; a list of codes or short texts is one input, comma or
line separated. The rules themselves stay in the schemas: nothing is checked here that the model
does not check.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, Literal

from schemas import BODY_MODELS

#: Fields the application layer fills in from what it already knows (the due date from the
#: tracing policy): not asked in the form.
FILLED_BY_THE_NODE: dict[str, frozenset[str]] = {"tracing.request": frozenset({"due_at"})}
#: Lists of objects offered as several rows (the lines of a transfer's items): the first row as the
#: model asks for it, the others optional and left out while blank.
ROWS: dict[str, dict[str, int]] = {"transfer.notice": {"items": 4}}
#: Fields chosen among the states of the directory rather than every ISO code: the states the
#: message goes to (Art. IX.1: the importing and transit states receive the notice).
DIRECTORY: dict[str, frozenset[str]] = {
    "transfer.notice": frozenset({"importer.country", "transit_states"})
}
_CHOICE = re.compile(r"\^\(([a-z_|]+)\)\$")
#: Free text the models allow to be long but that is one line in practice.
_SHORT = frozenset({"phone", "email", "request_msg_id", "place", "name", "position", "agency"})

Widget = Literal["text", "textarea", "date", "datetime", "number", "select", "list", "bool"]


@dataclass(frozen=True)
class FormField:
    """One input: its body path, the property it labels, how it is entered."""

    path: str
    name: str
    widget: Widget
    required: bool
    options: tuple[str, ...] = ()
    description: str | None = None
    #: the row of a list offered as several rows (:data:`ROWS`), else None
    row: int | None = None
    #: chosen among the directory's states (:data:`DIRECTORY`)
    directory: bool = False

    @property
    def group(self) -> str:
        """The path of the object this field belongs to ('' at the top)."""
        return ".".join(p for p in self.path.split(".")[:-1] if not p.isdigit())

    @property
    def section(self) -> str:
        """What the field's fieldset is named for: its group, and the row's number in a list
        of rows (``items.1``)."""
        return self.group if self.row is None else f"{self.group}.{self.row}"


def _resolve(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The property's schema with ``$ref`` followed, and whether it may be null."""
    nullable = False
    prop = dict(prop)
    for key in ("anyOf", "oneOf"):
        if key in prop:
            options = [o for o in prop[key] if o.get("type") != "null"]
            nullable = len(options) < len(prop[key])
            merged = {k: v for k, v in prop.items() if k != key}
            prop = {**merged, **options[0]} if len(options) == 1 else merged
    if "$ref" in prop:
        target = defs[prop["$ref"].rsplit("/", 1)[-1]]
        prop = {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
        return _resolve(prop, defs)[0], nullable
    if "allOf" in prop and len(prop["allOf"]) == 1:
        inner, _ = _resolve(prop["allOf"][0], defs)
        prop = {**inner, **{k: v for k, v in prop.items() if k != "allOf"}}
    return prop, nullable


def _walk(
    schema: Mapping[str, Any], defs: Mapping[str, Any], prefix: str, required: bool
) -> Iterator[FormField]:
    needed = set(schema.get("required", ()))
    for name, raw in schema.get("properties", {}).items():
        # the attachments' manifests are written by the node from the files uploaded with the form
        if not prefix and name in ("kind", "schema_version", "attachments"):
            continue
        prop, nullable = _resolve(raw, defs)
        yield from _field(
            prop, defs, f"{prefix}{name}", name, required and name in needed and not nullable
        )


def _field(
    prop: dict[str, Any], defs: Mapping[str, Any], path: str, name: str, required: bool
) -> Iterator[FormField]:
    description = prop.get("description")
    if prop.get("type") == "object" or "properties" in prop:
        yield from _walk(prop, defs, f"{path}.", required)
        return
    if prop.get("type") == "array":
        items, _ = _resolve(prop.get("items", {}), defs)
        if items.get("type") == "object" or "properties" in items:
            yield from _walk(items, defs, f"{path}.0.", required and prop.get("minItems", 0) > 0)
            return
        options = tuple(map(str, items.get("enum", ())))
        yield FormField(
            path, name, "list", required and prop.get("minItems", 0) > 0, options, description
        )
        return
    if "enum" in prop:
        yield FormField(path, name, "select", required, tuple(map(str, prop["enum"])), description)
        return
    choice = _CHOICE.fullmatch(prop.get("pattern", ""))
    if choice:  # a closed list written as a pattern, ^(seized|recovered|confiscated)$
        yield FormField(
            path, name, "select", required, tuple(choice.group(1).split("|")), description
        )
        return
    widget: Widget = "text"
    if prop.get("type") == "boolean":
        widget = "bool"
    elif prop.get("type") in ("integer", "number"):
        widget = "number"
    elif prop.get("format") == "date":
        widget = "date"
    elif prop.get("format") == "date-time":
        widget = "datetime"
    elif prop.get("maxLength", 0) > 300 and name not in _SHORT:
        widget = "textarea"
    yield FormField(path, name, widget, required, (), description)


@cache
def form_fields(kind: str) -> tuple[FormField, ...]:
    """The inputs of a body of ``kind``, in the model's order."""
    schema = BODY_MODELS[kind].model_json_schema()
    skip = FILLED_BY_THE_NODE.get(kind, frozenset())
    chosen = DIRECTORY.get(kind, frozenset())
    fields = [
        replace(f, directory=f.path in chosen)
        for f in _walk(schema, schema.get("$defs", {}), "", True)
        if f.path not in skip
    ]
    for name, count in ROWS.get(kind, {}).items():
        fields = _as_rows(fields, name, count)
    return tuple(fields)


def _as_rows(fields: list[FormField], name: str, count: int) -> list[FormField]:
    """The single entry of the list ``name`` repeated as ``count`` rows."""
    prefix = f"{name}.0."
    block = [f for f in fields if f.path.startswith(prefix)]
    if not block:
        return fields
    at = fields.index(block[0])
    rows = [
        replace(f, path=f"{name}.{i}.{f.path[len(prefix) :]}", required=f.required and i == 0,
                row=i)
        for i in range(count)
        for f in block
    ]  # fmt: skip
    return fields[:at] + rows + [f for f in fields[at:] if f not in block]


def _value(field: FormField, text: str) -> Any:
    if field.widget == "list":
        return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
    if field.widget == "bool":
        return text == "true"
    if field.widget == "number":
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text  # the model names the field and what it expects
    if field.widget == "datetime" and len(text) == 16:  # <input type=datetime-local>: UTC
        return f"{text}:00Z"
    return text


def body_from_form(kind: str, form: Mapping[str, Any]) -> dict[str, Any]:
    """The body the officer filled in: empty inputs left out, so the model's defaults and its
    "required" checks apply."""
    body: dict[str, Any] = {}
    for field in form_fields(kind):
        raw = form.get(field.path)
        if field.widget == "list" and hasattr(form, "getlist"):  # a list of checkboxes
            raw = ",".join(str(v) for v in form.getlist(field.path))
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            continue
        _put(body, field.path.split("."), _value(field, text))
    for name in ROWS.get(kind, {}):  # a blank row between filled ones is no line
        if isinstance(body.get(name), list):
            body[name] = [row for row in body[name] if row]
    return body


def _put(target: dict[str, Any], parts: list[str], value: Any) -> None:
    node: Any = target
    for here, after in itertools.pairwise(parts):
        key: Any = int(here) if here.isdigit() else here
        if isinstance(node, list):
            while len(node) <= key:  # a new container each: rows left blank stay apart
                node.append([] if after.isdigit() else {})
            node = node[key]
        else:
            node = node.setdefault(key, [] if after.isdigit() else {})
    last = parts[-1]
    if isinstance(node, list):
        node.append(value)
    else:
        node[last] = value


def flatten(body: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A body as the form's values (to show a form again with what was typed)."""
    out: dict[str, str] = {}
    for key, value in body.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{path}."))
        elif isinstance(value, list) and value and isinstance(value[0], Mapping):
            for i, item in enumerate(value):
                out.update(flatten(item, f"{path}.{i}."))
        elif isinstance(value, list):
            out[path] = ", ".join(map(str, value))
        elif value is not None:
            out[path] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def problems_by_field(problems: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The application layer's validation problems, keyed by form input path."""
    return {str(p.get("field", "body")): p for p in problems}
