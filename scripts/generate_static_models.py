"""Generate the typed static-data models from the vendored Static Data API spec.

Reads ``scripts/specs/hm-vehicle-static-data-api-v1.yml`` and writes
``hm_async/models/static_data.py``: the answer of ``GET /v1/vehicle-static-data/{vin}/data``
(``StaticData``), the answer of ``POST /v1/vehicle-static-data/{vin}/valuation``
(``VehicleValuation``) and that call's body (``ValuationRequest``). A sibling of
``generate_models.py``: it reuses that script's emitters (same struct options, docstring
wrapping and ``ruff format``-clean output), but this spec needs other rules:

* the spec's misspelt key ``orginal`` (original price) is the field ``original``;

* most objects are written inline (no component name), so a nested object is named after its
  place: ``Static`` + its parent's key + its own key (``vehicle.specs.engine.output.power`` ->
  ``StaticOutputPower``), more ancestors only when two places would get the same name;
* keys that are not Python names (``"1"``, ``class``) get a field name and ``msgspec.field(
  name=...)`` keeps the wire name;
* strings with ``format: decimal`` or ``format: number`` (money, kilometres sent as text) are
  ``Decimal`` (exact, decoded from the string); ``format: datetime`` is ``datetime``;
* every field is optional (the spec marks nothing required) and unknown fields are ignored.

Spec errata the generator knows (each one a decision, written down here, not a hand edit):
the schema says equipment ``positions`` are strings while every example in the spec shows
objects (``{"description": ...}``), so an item is ``str | EquipmentPositionItem``.

Usage::

    python scripts/generate_static_models.py           # (re)write the generated module
    python scripts/generate_static_models.py --check   # exit 1 if it is out of date

Only the standard library and PyYAML are needed; no network.
"""

from __future__ import annotations

import argparse
import hashlib
import keyword
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling generator's emitters
from generate_models import (
    INDENT,
    LINE,
    Field,
    Struct,
    camel,
    emit_all,
    emit_struct,
    pystr,
    ref_name,
    shown,
)

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "scripts" / "specs" / "hm-vehicle-static-data-api-v1.yml"
OUT = ROOT / "hm_async" / "models" / "static_data.py"

#: Names the generated code uses for types; a field with one of these names would shadow it.
RESERVED = {"datetime", "Decimal", "float", "int", "list", "str", "bool", "msgspec"}

#: Component schema -> class name. Components not listed (the error bodies) are not modelled:
#: errors become exceptions in ``hm_async._errors``.
COMPONENT_NAMES = {
    "VehicleStaticDataDataResponse": "StaticData",
    "VehicleStaticValuationDataResponse": "VehicleValuation",
    "VehicleStaticValuationDataRequest": "ValuationRequest",
    "VehicleStaticDataResponse": "VehicleIdentification",
    "VehicleStaticDataManufacturer": "IdentificationManufacturer",
    "VehicleStaticDataEquipment": "IdentificationEquipment",
    "VehicleStaticDataEquipmentList": "EquipmentPosition",
}
#: The other modelled components are the valuation's: ``VehicleStaticDataValuationPrice`` ->
#: ``ValuationPrice``.
COMPONENT_PREFIX = "VehicleStaticData"

#: Root schemas: what the API answers or takes; everything else is reached from them.
ROOTS = (
    "VehicleStaticDataDataResponse",
    "VehicleStaticValuationDataResponse",
    "VehicleStaticValuationDataRequest",
)

#: Docstrings of the structs users meet first (the others say where they sit).
DOCS = {
    "StaticData": "The answer of ``GET /v1/vehicle-static-data/{vin}/data``: what DAT knows "
    "about the vehicle (manufacturer, model, KBA numbers, specs, original price).",
    "VehicleValuation": "The answer of ``POST /v1/vehicle-static-data/{vin}/valuation``: the "
    "valuation (``valuation.price.sales.gross``...) and the identified vehicle.",
    "ValuationRequest": "The body of ``POST /v1/vehicle-static-data/{vin}/valuation``.",
    "VehicleIdentification": "The vehicle a valuation was made for: manufacturer and equipment.",
    "Valuation": "DAT's valuation: prices, condition and odometer corrections, when it was made.",
}
#: (component, key) -> Python field name where the spec's key is misspelt (the wire keeps it).
RENAMES = {("VehicleStaticDataValuationPrice", "orginal"): "original"}

#: (component, property) -> (annotation, extra struct) for the spec errata (module docstring).
POSITION_ITEM = Struct(
    "EquipmentPositionItem",
    "One position contained in an equipment item, as the spec's examples show it (the schema "
    "says a plain string; both decode).",
    [Field("description", "str | None", "None", "What the position is")],
)
ERRATA = {
    ("VehicleStaticDataEquipmentList", "positions"): (
        "list[str | EquipmentPositionItem]",
        POSITION_ITEM,
    ),
}

Schema = dict[str, Any]


def class_of_component(name: str) -> str:
    if name in COMPONENT_NAMES:
        return COMPONENT_NAMES[name]
    if name.startswith(COMPONENT_PREFIX + "Valuation"):
        return name[len(COMPONENT_PREFIX) :]
    raise SystemExit(f"generator: no class name for component {name}; teach the generator")


def field_name(key: str, parent_key: str) -> str:
    """A Python field name for a JSON key (the wire name is kept by the caller)."""
    if key.isdigit():
        if not parent_key:
            raise SystemExit(f"generator: digit key {key!r} under an unknown parent; add it")
        return f"{parent_key}_{key}"  # DAT's own names: Base1..3, SubTotal1..2
    if keyword.iskeyword(key) or key in RESERVED:
        return key + "_"
    if not key.isidentifier():
        raise SystemExit(f"generator: key {key!r} needs a field name; teach the generator")
    return key


def describe(schema: Schema, key: str) -> str:
    text = schema.get("description") or key.replace("_", " ").capitalize()
    fmt = schema.get("format")
    if schema.get("type") == "string" and fmt in ("decimal", "number"):
        text = f"{text.rstrip('.')}. Sent as a string; decoded exactly."
    return str(text)


class Builder:
    """Walks the root schemas and collects one :class:`Struct` per object, in use order."""

    def __init__(self, schemas: dict[str, Schema]) -> None:
        self.schemas = schemas
        self.structs: dict[str, Struct] = {}
        self.order: list[str] = []
        self.sources: dict[str, Schema] = {}
        # Inline objects of StaticData: path (without "vehicle") -> class name.
        self.inline_names: dict[tuple[str, ...], str] = {}

    # -- naming of the inline tree of StaticData --------------------------------------------
    def name_inline_tree(self, root: Schema) -> None:
        paths: list[tuple[str, ...]] = []

        def walk(schema: Schema, path: tuple[str, ...]) -> None:
            for key, sub in schema.get("properties", {}).items():
                if sub.get("type") == "object" and "properties" in sub:
                    paths.append((*path, key))
                    walk(sub, (*path, key))

        walk(root["properties"]["vehicle"], ())
        depth = {p: min(2, len(p)) for p in paths}
        while True:
            names: dict[str, list[tuple[str, ...]]] = {}
            for p in paths:
                names.setdefault("Static" + "".join(camel(k) for k in p[-depth[p] :]), []).append(p)
            clashes = [ps for ps in names.values() if len(ps) > 1]
            if not clashes:
                break
            for ps in clashes:
                for p in ps:
                    if depth[p] == len(p):
                        raise SystemExit(f"generator: cannot name {'.'.join(p)} uniquely")
                    depth[p] += 1
        self.inline_names = {p: n for n, ps in names.items() for p in ps}
        self.inline_names[()] = "StaticVehicle"

    # -- types -----------------------------------------------------------------------------
    def type_of(self, schema: Schema, key: str, owner: str, path: tuple[str, ...] | None) -> str:
        """The Python type of a value; builds the struct of an inline object on the way."""
        if "$ref" in schema:
            target = ref_name(schema["$ref"])
            resolved = self.schemas[target]
            if resolved.get("type") == "object" or "properties" in resolved:
                return self.struct(target, resolved, class_of_component(target), None)
            return self.type_of(resolved, key, owner, path)
        kind = schema.get("type", "object" if "properties" in schema else None)
        if kind == "object":
            name = self.inline_names[path] if path is not None else owner + camel(key)
            return self.struct(None, schema, name, path)
        if kind == "string":
            fmt = schema.get("format")
            if fmt in ("decimal", "number"):
                return "Decimal"
            if fmt in ("datetime", "date-time"):
                return "datetime"
            return "str"
        if kind == "number":
            return "float"
        if kind == "integer":
            return "int"
        if kind == "boolean":
            return "bool"
        if kind == "array":
            return f"list[{self.type_of(schema['items'], key, owner, None)}]"
        raise SystemExit(f"generator: unsupported schema {schema}")

    def struct(self, component: str | None, schema: Schema, name: str,
               path: tuple[str, ...] | None) -> str:
        if name in self.structs:
            if self.sources[name] is not schema:
                raise SystemExit(f"generator: two schemas would be class {name}")
            return name
        self.sources[name] = schema
        self.structs[name] = Struct(name, "", [])  # placeholder against recursion
        fields = []
        for key, sub in schema.get("properties", {}).items():
            erratum = ERRATA.get((component or "", key))
            if erratum is not None:
                annotation, extra = erratum
                if extra.name not in self.structs:
                    self.structs[extra.name] = extra
                    self.sources[extra.name] = {}
                    self.order.append(extra.name)
            else:
                sub_path = None
                if path is not None or component == "VehicleStaticDataDataResponse":
                    sub_path = () if component else (*(path or ()), key)
                annotation = self.type_of(sub, key, name, sub_path)
            fname = RENAMES.get((component or "", key)) or field_name(
                key, path[-1] if path else PARENT_KEYS.get(name, ""))
            is_list = annotation.startswith("list[")
            default = "[]" if is_list else "None"
            if fname != key:
                default = f"msgspec.field(default={'[]' if is_list else 'None'}, name={pystr(key)})"
                if is_list:  # msgspec wants a factory for a mutable default
                    default = f"msgspec.field(default_factory=list, name={pystr(key)})"
            fields.append(Field(fname, annotation if is_list else f"{annotation} | None",
                                default, describe(sub, key)))
        doc = DOCS.get(name) or schema.get("description") or self.where(name, component, path)
        self.structs[name] = Struct(name, doc, fields)
        self.order.append(name)
        return name

    @staticmethod
    def where(name: str, component: str | None, path: tuple[str, ...] | None) -> str:
        if path is not None:
            return f"``vehicle.{'.'.join(path)}`` of the static data answer" if path else (
                "The vehicle described by the static data answer")
        if component is not None:
            return f"The spec's ``{component}`` schema"
        return f"Part of ``{name}``"


#: Class -> the key it sits under, for classes outside the inline tree that have digit keys
#: (their fields are named ``<parent key>_<digit>``, as DAT's BasePrice1 / SubTotal1).
PARENT_KEYS = {"ValuationPriceBase": "base", "ValuationConditionSubTotal": "sub_total"}


# ---------------------------------------------------------------------------- emitting

DOC = '''"""Typed answers of the Vehicle Static Data API (``/v1/vehicle-static-data/{vin}/...``).

``StaticData`` is the answer of ``GET .../{vin}/data`` (manufacturer, model, KBA numbers,
specs, original price), ``VehicleValuation`` the answer of ``POST .../{vin}/valuation``
(prices, condition, odometer correction) and ``ValuationRequest`` that call's body. DAT
(the data source behind the API) sends numbers as strings: values the spec formats as decimal
are ``Decimal`` (exact), the rest of the strings stay ``str`` as sent.

Forward compatibility: every field is optional and unknown fields are ignored, so a field
the vendor adds or drops later still decodes. Structs are frozen, keyword-only and
``gc=False`` like the vehicle-data models (a tree of plain values cannot form a cycle).
"""'''


def render(schemas: dict[str, Schema], spec_sha256: str) -> str:
    builder = Builder(schemas)
    builder.name_inline_tree(schemas["VehicleStaticDataDataResponse"])
    for root in ROOTS:
        builder.struct(root, schemas[root], class_of_component(root), None)
    structs = [builder.structs[n] for n in builder.order]
    uses = " ".join(f.annotation for s in structs for f in s.fields)
    out = [
        "# Generated by scripts/generate_static_models.py from",
        f"# scripts/specs/{SPEC.name} (sha256 {spec_sha256[:16]}…).",
        "# Do not edit by hand: change the generator or the spec, then run",
        "# `python scripts/generate_static_models.py`; its `--check` option tells whether this",
        "# file is up to date.",
        DOC,
    ]
    stdlib = [f"from {m} import {n}" for m, n in (("datetime", "datetime"), ("decimal", "Decimal"))
              if n in uses]
    out += ["", *stdlib, ""] if stdlib else [""]
    out += [
        "import msgspec",
        "",
        *emit_all(s.name for s in structs),
        "",
        "",
        "class _Model(msgspec.Struct, frozen=True, gc=False, omit_defaults=True, "
        "repr_omit_defaults=True):",
        f'{INDENT}"""Options shared by every generated struct (see the module docstring)."""',
    ]
    for s in structs:
        out += emit_struct(s)
    text = "\n".join(out) + "\n"
    too_long = [line for line in text.splitlines() if len(line) > LINE]
    if too_long:
        raise SystemExit(f"generator: lines longer than {LINE}: {too_long[:3]}")
    return text


def build(spec_text: str) -> str:
    spec = yaml.safe_load(spec_text)
    return render(spec["components"]["schemas"], hashlib.sha256(spec_text.encode()).hexdigest())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed file is out of date"
    )
    args = parser.parse_args(argv)
    text = build(SPEC.read_text(encoding="utf-8"))
    stale = not OUT.exists() or OUT.read_text(encoding="utf-8") != text
    if args.check:
        if stale:
            print(f"{shown(OUT)} is out of date: run python scripts/generate_static_models.py")
        return 1 if stale else 0
    if stale:
        OUT.write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote {shown(OUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
