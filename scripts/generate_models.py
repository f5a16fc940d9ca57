"""Generate the typed vehicle-data models from the vendored Vehicle Data API spec.

Reads ``scripts/specs/hm-vehicle-data-api-v1.yml`` (Auto API level 13) and writes
``hm_async/models/vehicle_data.py`` (the REST shape: a multi-instance property is a list, a
single one an object) and ``hm_async/models/_streaming.py`` (the streaming / JSON-schema
shape, where every property is a list). The output is emitted already formatted for
``ruff format`` and lint-clean, so a fresh run is byte-for-byte comparable with the
committed files; ``--check`` exits 1 when they differ, without writing anything.

Usage::

    python scripts/generate_models.py           # (re)write the generated modules
    python scripts/generate_models.py --check   # exit 1 if they are out of date

Only the standard library and PyYAML are needed; no network.
"""

from __future__ import annotations

import argparse
import hashlib
import keyword
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "scripts" / "specs" / "hm-vehicle-data-api-v1.yml"
REST_OUT = ROOT / "hm_async" / "models" / "vehicle_data.py"
STREAMING_OUT = ROOT / "hm_async" / "models" / "_streaming.py"

LINE = 100
INDENT = "    "
#: Names the generated code uses for types; a field with one of these names would shadow it.
RESERVED = {"datetime", "float", "int", "list", "str", "msgspec", "Property", "Failure"}

Schema = dict[str, Any]


def camel(snake: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


def ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def pystr(text: str) -> str:
    """A double-quoted Python string literal as ruff format writes it."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def docstring(text: str, indent: str) -> list[str]:
    """A docstring wrapped to the line length, closing quotes on the last text line."""
    text = " ".join(text.split())
    if not text.endswith((".", "!", "?", ":")):
        text += "."
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    width = LINE - len(indent) - 6  # room for both quotes on a one-line docstring
    lines = textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)
    lines[0] = '"""' + lines[0]
    lines[-1] += '"""'
    return [indent + line for line in lines]


@dataclass
class Field:
    """One field of a generated struct."""

    name: str
    annotation: str
    default: str | None  # None: required
    doc: str


@dataclass
class Struct:
    name: str
    doc: str
    fields: list[Field]
    base: str = "_Model"
    extra: list[str] = field(default_factory=list)


@dataclass
class Model:
    """Everything the emitters need, resolved from the spec."""

    spec_sha256: str
    enums: dict[str, list[str]] = field(default_factory=dict)  # alias -> values
    units: list[Struct] = field(default_factory=list)
    custom: list[Struct] = field(default_factory=list)
    capabilities: list[tuple[str, str, list[tuple[str, str, bool, str]]]] = field(
        default_factory=list
    )  # (cap name, class, [(property, item type, multiple, doc)])
    top_fields: list[Field] = field(default_factory=list)


class Resolver:
    """Turns the spec's schemas into Python type expressions and enum aliases."""

    def __init__(self, schemas: dict[str, Schema]) -> None:
        self.schemas = schemas
        self.enums: dict[str, list[str]] = {}
        self.class_names: dict[str, str] = {}
        self.capabilities = sorted(
            name for name, prop in schemas["response"]["properties"].items() if "$ref" in prop
        )
        taken: set[str] = set()
        # Units first (users touch them most), then capabilities, then custom types.
        for name in sorted(schemas):
            if name.startswith("unit_"):
                self._claim(name, camel(name[len("unit_") :]), taken)
        for name in self.capabilities:
            self._claim(name, camel(name), taken)
        for name in sorted(schemas):
            if name.startswith("custom_type_") and self.is_struct(schemas[name]):
                base = camel(name[len("custom_type_") :])
                self._claim(name, base if base not in taken else base + "Type", taken)
        self.taken = taken

    def _claim(self, schema: str, cls: str, taken: set[str]) -> None:
        if cls in taken:
            raise SystemExit(f"generator: class name {cls} of {schema} is taken twice")
        taken.add(cls)
        self.class_names[schema] = cls

    @staticmethod
    def is_struct(schema: Schema) -> bool:
        return schema.get("type") == "object" and "properties" in schema

    def enum(self, alias: str, values: list[str]) -> str:
        known = self.enums.get(alias)
        if known is not None and known != values:
            raise SystemExit(f"generator: enum alias {alias} has two different value sets")
        if alias in self.taken:
            raise SystemExit(f"generator: enum alias {alias} collides with a class name")
        self.enums[alias] = list(values)
        return alias

    def type_of(self, schema: Schema, enum_alias: str) -> tuple[str, str | None]:
        """(Python type, enum alias naming its known values or None) of a value schema."""
        if "$ref" in schema:
            target = ref_name(schema["$ref"])
            resolved = self.schemas[target]
            if target in self.class_names:
                return self.class_names[target], None
            if target.startswith("custom_type_"):
                return self.type_of(resolved, camel(target[len("custom_type_") :]))
            raise SystemExit(f"generator: unsupported reference {target}")
        kind = schema.get("type")
        if "enum" in schema:
            if kind != "string":
                raise SystemExit(f"generator: non-string enum {schema}")
            return "str", self.enum(enum_alias, schema["enum"])
        if kind == "string":
            return ("datetime" if schema.get("format") == "date-time" else "str"), None
        if kind == "integer":
            return "int", None
        if kind == "number":
            return "float", None
        if kind == "boolean":
            return "bool", None
        if kind == "array":
            item, alias = self.type_of(schema["items"], enum_alias)
            return f"list[{item}]", alias
        raise SystemExit(f"generator: unsupported schema {schema}")


def with_known(doc: str, alias: str | None) -> str:
    """The field's description, naming the Literal alias of its known values if any."""
    doc = doc.strip()
    return f"{doc.rstrip('.')}. Known values: ``{alias}``." if alias else doc


def field_name(name: str) -> str:
    if keyword.iskeyword(name) or name in RESERVED or not name.isidentifier():
        raise SystemExit(f"generator: field name {name!r} needs renaming; teach the generator")
    return name


def build(spec_text: str) -> Model:
    spec = yaml.safe_load(spec_text)
    schemas: dict[str, Schema] = spec["components"]["schemas"]
    res = Resolver(schemas)
    model = Model(spec_sha256=hashlib.sha256(spec_text.encode()).hexdigest())

    for name in sorted(schemas):
        if not name.startswith("unit_"):
            continue
        cls = res.class_names[name]
        family = name[len("unit_") :]
        unit_alias = res.enum(cls + "Unit", schemas[name]["properties"]["unit"]["enum"])
        model.units.append(
            Struct(
                name=cls,
                doc=f"A {family.replace('_', ' ')} measurement: ``value`` in ``unit``. "
                f"Convert with ``.to(unit)`` or ``.value_in(unit)``; the spec's units are "
                f"``{unit_alias}``.",
                fields=[],
                base="Measurement",
                extra=[f"family: ClassVar[str] = {pystr(family)}"],
            )
        )

    for name in sorted(schemas):
        if not name.startswith("custom_type_"):
            continue
        schema = schemas[name]
        if not res.is_struct(schema):
            continue  # enums and plain numbers are inlined as str / float
        cls = res.class_names[name]
        required = set(schema.get("required", []))
        fields = []
        for prop in sorted(schema["properties"]):
            sub = schema["properties"][prop]
            py, alias = res.type_of(sub, cls + camel(prop))
            doc = sub.get("description", prop.replace("_", " ").capitalize())
            if prop in required:
                fields.append(Field(field_name(prop), py, None, with_known(doc, alias)))
            else:
                fields.append(
                    Field(field_name(prop), f"{py} | None", "None", with_known(doc, alias))
                )
        fields.sort(key=lambda f: f.default is not None)  # keep required first (readability)
        model.custom.append(Struct(cls, schema.get("description", cls), fields))
    model.custom = toposort(model.custom, set(res.class_names.values()))

    for cap in res.capabilities:
        schema = schemas[cap]
        props = []
        for prop in sorted(schema["properties"]):
            sub = schema["properties"][prop]
            multiple = sub.get("type") == "array"
            wrapper = ref_name(sub["items"]["$ref"] if multiple else sub["$ref"])
            data_schema = schemas[wrapper]["properties"]["data"]
            suffix = wrapper.split("_property_", 1)[1]
            item, alias = res.type_of(data_schema, camel(cap) + camel(suffix))
            doc = sub.get("description", prop.replace("_", " ").capitalize())
            if sub.get("deprecated") or schemas[wrapper].get("deprecated"):
                doc = "Deprecated. " + doc
            props.append((field_name(prop), item, multiple, with_known(doc, alias)))
        model.capabilities.append((cap, res.class_names[cap], props))

    response = schemas["response"]["properties"]
    for top in ("request_id", "vin", "brand"):
        sub = response[top]
        py, alias = res.type_of(sub, camel(top))
        model.top_fields.append(
            Field(top, f"{py} | None", "None", with_known(sub["description"], alias))
        )
    unknown = [
        k
        for k, v in response.items()
        if "$ref" not in v and k not in ("request_id", "vin", "brand")
    ]
    if unknown:
        raise SystemExit(f"generator: top-level fields {unknown} are not handled")
    model.enums = dict(sorted(res.enums.items()))
    return model


def toposort(structs: list[Struct], class_names: set[str]) -> list[Struct]:
    """Order structs so each is defined after the ones its fields use (ties: by name)."""
    by_name = {s.name: s for s in structs}
    done: list[Struct] = []
    seen: set[str] = set()

    def visit(s: Struct) -> None:
        if s.name in seen:
            return
        seen.add(s.name)
        for f in s.fields:
            for word in f.annotation.replace("[", " ").replace("]", " ").replace("|", " ").split():
                if word in by_name and word in class_names:
                    visit(by_name[word])
        done.append(s)

    for s in sorted(structs, key=lambda s: s.name):
        visit(s)
    return done


# ---------------------------------------------------------------------------- emitting


def header(model: Model, what: str) -> list[str]:
    return [
        "# Generated by scripts/generate_models.py from scripts/specs/hm-vehicle-data-api-v1.yml",
        f"# (sha256 {model.spec_sha256[:16]}…). Do not edit by hand: change the generator or",
        "# the spec, then run `python scripts/generate_models.py`;",
        "# `python scripts/generate_models.py --check` tells whether this file is up to date.",
        what,
    ]


def sort_all(names: Iterable[str]) -> list[str]:
    """``__all__`` in the order ruff's RUF022 wants (SCREAMING_CASE, CamelCase, rest)."""

    def key(name: str) -> tuple[int, str]:
        if name.isupper():
            return 0, name
        return (1 if name[:1].isupper() else 2), name

    return sorted(names, key=key)


def emit_all(names: Iterable[str]) -> list[str]:
    return ["__all__ = [", *[f"{INDENT}{pystr(n)}," for n in sort_all(names)], "]"]


def emit_field(f: Field) -> list[str]:
    head = f"{INDENT}{f.name}: {f.annotation}"
    if f.default is None:
        lines = [head]
    elif len(f"{head} = {f.default}") <= LINE:
        lines = [f"{head} = {f.default}"]
    elif f.default.endswith(")"):  # a call: ruff format splits its arguments
        func, args = f.default[:-1].split("(", 1)
        lines = [f"{head} = {func}(", f"{INDENT * 2}{args}", f"{INDENT})"]
    else:
        lines = [f"{head} = (", f"{INDENT * 2}{f.default}", f"{INDENT})"]
    if any(len(line) > LINE for line in lines):
        raise SystemExit(f"generator: cannot fit field {f.name} in {LINE} columns")
    return lines + docstring(f.doc, INDENT)


def emit_struct(s: Struct) -> list[str]:
    out = [
        "",
        "",
        f"class {s.name}({s.base}, frozen=True, kw_only=True):",
        *docstring(s.doc, INDENT),
    ]
    if s.extra:
        out.append("")
        out += [INDENT + line for line in s.extra]
    if s.fields:
        out.append("")
        for i, f in enumerate(s.fields):
            if i:
                out.append("")
            out += emit_field(f)
    return out


def capability_struct(
    cls: str, cap: str, props: list[tuple[str, str, bool, str]], *, streaming: bool
) -> Struct:
    fields = []
    for name, item, multiple, doc in props:
        wrapped = f"Property[{item}]"
        if multiple or streaming:
            fields.append(Field(name, f"list[{wrapped}]", "[]", doc))
        else:
            fields.append(Field(name, f"{wrapped} | None", "None", doc))
    shape = (
        "every property is a list of values (the streaming / JSON-schema shape)"
        if streaming
        else "a single-instance property is a ``Property`` or None, a multi-instance one a "
        "list of them (empty when absent)"
    )
    return Struct(cls, f"The ``{cap}`` capability: {shape}.", fields)


REST_DOC = '''"""Typed Auto API level 13 vehicle data (``GET /v1/vehicle-data/autoapi-13/{vin}``).

One struct per capability (``Diagnostics``…), per custom type (``TirePressure``…) and per
unit family (``Length``…, with unit conversion from :mod:`hm_async.models.units`); every
property is wrapped in ``Property[T]`` (``data``, ``timestamp``, ``failure``) and properties
with several instances (tire pressures, doors…) are lists of those.

Forward compatibility: unknown capabilities, properties and fields are ignored, and enumerated
values are typed ``str`` so a value the vendor adds later still decodes; the ``Literal``
aliases below (``ActiveState``…) list the values the spec knows, and field docstrings name
the alias that applies. Fields the spec marks required inside custom types are required here.

All structs are frozen, keyword-only and ``gc=False``: the decoded tree holds only strings,
numbers, datetimes, lists and other structs, none of which point back up the tree, so it
cannot form a reference cycle and the garbage collector need not track (or scan) the many
thousands of objects a fleet job holds.
"""'''

STREAMING_DOC = '''"""Auto API level 13 vehicle data in the streaming shape: every property a list.

The capabilities of :mod:`hm_async.models.vehicle_data` again, but every property is a list of
``Property`` values, as in MQTT / JSON-schema messages (``json-schema/auto-api/0002``). Custom
types and units are shared with the REST models; the same forward-compatibility rules and
``gc=False`` reasoning apply.
"""'''


def render_rest(model: Model) -> str:
    names = [*model.enums, *(s.name for s in model.units), *(s.name for s in model.custom)]
    names += ["Property", "VehicleData", *(cls for _, cls, _ in model.capabilities)]
    out = header(model, REST_DOC)
    out += [
        "",
        "from datetime import datetime",
        "from typing import ClassVar, Generic, Literal, TypeVar",
        "",
        "import msgspec",
        "",
        "from ._freshness import PropertyAge, VehicleDataFreshness",
        "from .units import Measurement",
        "",
        *emit_all(names),
        "",
        'T = TypeVar("T")',
        "",
        "",
        "class _Model(msgspec.Struct, frozen=True, gc=False, omit_defaults=True, "
        "repr_omit_defaults=True):",
        f'{INDENT}"""Options shared by every generated struct (see the module docstring)."""',
        "",
        "",
    ]
    for alias, values in model.enums.items():
        one = f"{alias} = Literal[{', '.join(pystr(v) for v in values)}]"
        if len(one) <= LINE:
            out.append(one)
        else:
            out += [f"{alias} = Literal[", *[f"{INDENT}{pystr(v)}," for v in values], "]"]
    for s in model.units:
        out += emit_struct(s)
    failure = next(s for s in model.custom if s.name == "Failure")
    rest = [s for s in model.custom if s is not failure]
    out += emit_struct(failure)
    out += emit_struct(
        Struct(
            "Property",
            "One value of a property, as the carmaker last reported it. ``data`` is None when "
            "the vehicle could not deliver it; ``failure`` then says why.",
            [
                Field("data", "T | None", "None", "The value"),
                Field("timestamp", "datetime | None", "None", "When the value was recorded"),
                Field("failure", "Failure | None", "None", "Why the value is missing"),
            ],
            base="_Model, PropertyAge, Generic[T]",
        )
    )
    for s in rest:
        out += emit_struct(s)
    for cap, cls, props in model.capabilities:
        out += emit_struct(capability_struct(cls, cap, props, streaming=False))
    top = [*model.top_fields]
    top += [
        Field(cap, f"{cls} | None", "None", f"The ``{cap}`` capability, if the body has it")
        for cap, cls, _ in model.capabilities
    ]
    out += emit_struct(
        Struct(
            "VehicleData",
            "The body of ``GET /v1/vehicle-data/autoapi-13/{vin}``: every capability the "
            "vehicle reported (None for the others). ``freshness()``, ``age()`` and "
            "``property_age(\"diagnostics.odometer\")`` tell how old the data is.",
            top,
            base="_Model, VehicleDataFreshness",
        )
    )
    return "\n".join(out) + "\n"


def render_streaming(model: Model) -> str:
    classes = [("Streaming" + cls, cap, props) for cap, cls, props in model.capabilities]
    used = sorted(
        {
            word
            for _, _, props in model.capabilities
            for _, item, _, _ in props
            for word in item.replace("[", " ").replace("]", " ").split()
            if word[:1].isupper()
        }
        | {"Property"}
    )
    needs_datetime = any("datetime" in item for _, _, p in classes for _, item, _, _ in p)
    out = header(model, STREAMING_DOC)
    out += ["", "from datetime import datetime", ""] if needs_datetime else [""]
    out += ["import msgspec", ""]
    out += ["from ._freshness import VehicleDataFreshness"]
    out += ["from .vehicle_data import ("]
    out += [f"{INDENT}{name}," for name in sorted(used, key=lambda n: (n.startswith("_"), n))]
    out += [")", ""]
    out += emit_all(["StreamingVehicleData", *(c for c, _, _ in classes)])
    out += [
        "",
        "",
        "# Defined here again, not imported: ruff must see that the base is a msgspec.Struct.",
        "class _Model(msgspec.Struct, frozen=True, gc=False, omit_defaults=True, "
        "repr_omit_defaults=True):",
        f'{INDENT}"""Options shared by every generated struct (see the module docstring)."""',
    ]
    for cls, cap, props in classes:
        out += emit_struct(capability_struct(cls, cap, props, streaming=True))
    out += emit_struct(
        Struct(
            "StreamingVehicleData",
            "A streaming / JSON-schema vehicle data message: the capabilities it carries "
            "(None for the others).",
            [
                Field(cap, f"{cls} | None", "None", f"The ``{cap}`` capability, if present")
                for cls, cap, _ in classes
            ],
            base="_Model, VehicleDataFreshness",
        )
    )
    return "\n".join(out) + "\n"


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed files are out of date"
    )
    args = parser.parse_args(argv)
    model = build(SPEC.read_text(encoding="utf-8"))
    outputs = {REST_OUT: render_rest(model), STREAMING_OUT: render_streaming(model)}
    stale = [
        path
        for path, text in outputs.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    if args.check:
        for path in stale:
            print(f"{shown(path)} is out of date: run python scripts/generate_models.py")
        return 1 if stale else 0
    for path in stale:
        path.write_text(outputs[path], encoding="utf-8", newline="\n")
        print(f"wrote {shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
