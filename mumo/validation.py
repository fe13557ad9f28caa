"""Checking a composed config against its schema, before any work starts.

A schema is a dataclass, as in Hydra's structured configs: its field types are checked by
OmegaConf (so `seed=abc` or `inner_steps=1.5` are rejected), and each field may carry value rules
in its metadata (`knob(AtLeast(0))`). A node with a `_target_` is checked against the
schema registered for that target (`SCHEMAS` in `mumo.schema`), so a task family adds a schema
for its data module and networks and gets the same checks. A schema may also define
`cross_checks(values)`, yielding (key, message) for constraints between keys.

Every problem becomes a `ConfigError` naming the key the user can change: when a value is a
plain interpolation such as `${inner_lr}`, the error names `inner_lr`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mumo.errors import ConfigError, MumoError


class Rule:
    """A constraint on one value: returns what is wrong with it, or None."""

    def __call__(self, value: Any) -> str | None:
        raise NotImplementedError


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class AtLeast(Rule):
    bound: float

    def __call__(self, value: Any) -> str | None:
        if _number(value) and math.isfinite(value) and value >= self.bound:
            return None
        return f"must be >= {self.bound} (got {value})"


@dataclasses.dataclass(frozen=True)
class AtMost(Rule):
    bound: float

    def __call__(self, value: Any) -> str | None:
        if _number(value) and math.isfinite(value) and value <= self.bound:
            return None
        return f"must be <= {self.bound} (got {value})"


@dataclasses.dataclass(frozen=True)
class Above(Rule):
    bound: float

    def __call__(self, value: Any) -> str | None:
        if _number(value) and math.isfinite(value) and value > self.bound:
            return None
        return f"must be > {self.bound} (got {value})"


@dataclasses.dataclass(frozen=True)
class OneOf(Rule):
    """One of `choices` (of the same type: 1 is not true); `why` explains a single allowed value."""

    choices: tuple
    why: str

    def __init__(self, *choices: Any, why: str = "") -> None:
        object.__setattr__(self, "choices", choices)
        object.__setattr__(self, "why", why)

    def __call__(self, value: Any) -> str | None:
        if any(value == c and type(value) is type(c) for c in self.choices):
            return None
        shown = ", ".join(_show(c) for c in self.choices)
        expected = f"must be {shown}: {self.why}" if self.why else f"must be one of {shown}"
        return f"{expected} (got {_show(value)})"


@dataclasses.dataclass(frozen=True)
class Each(Rule):
    """`rule` for every element of a list."""

    rule: Rule

    def __call__(self, value: Any) -> str | None:
        for element in value:
            if (problem := self.rule(element)) is not None:
                return f"every element {problem.replace(' (got', ' (got element')}"
        return None


@dataclasses.dataclass(frozen=True)
class Distinct(Rule):
    """No element of a list twice; `what` names an element in the message."""

    what: str = "element"

    def __call__(self, value: Any) -> str | None:
        return None if len({str(v) for v in value}) == len(value) else f"must not repeat a {self.what} (got {value})"


@dataclasses.dataclass(frozen=True)
class NonEmpty(Rule):
    def __call__(self, value: Any) -> str | None:
        return None if len(value) else "must not be empty"


def _show(value: Any) -> str:
    """A value as it is written in YAML and on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def knob(*rules: Rule, default: Any = MISSING) -> Any:
    """A schema field with value rules. The YAML files hold the defaults; `default` only for a
    key that some configs of a shared target leave out."""
    return dataclasses.field(default=default, metadata={"rules": rules})


def open_schema(cls: type) -> type:
    """Mark a schema as open: keys it does not declare are passed on (e.g. extra Trainer arguments)."""
    cls.__open__ = True
    return cls


def _first_line(err: OmegaConfBaseException) -> str:
    """OmegaConf's message without its context lines (and in plain words where it names its node types)."""
    message = str(getattr(err, "msg", None) or err).strip().splitlines()[0]
    if "is not a ListConfig" in message:
        return f"must be a list (got {_show(getattr(err, 'value', '?'))})"
    return message


_REFERENCE = re.compile(r"^\$\{([\w.]+)\}$")


def _origin(raw: Mapping, key: str) -> str:
    """The key whose value `key` takes through plain interpolations (`${inner_lr}` -> 'inner_lr')."""
    for _ in range(10):
        node: Any = raw
        for part in key.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        match = _REFERENCE.match(node) if isinstance(node, str) else None
        if match is None:
            return key
        key = match.group(1)
    return key


class Validator:
    """Checks one resolved config against a schema and the registered schemas of its targets."""

    def __init__(self, raw: Mapping, registry: Mapping[str, type]) -> None:
        self.raw, self.registry = raw, registry

    def fail(self, key: str, message: str) -> None:
        raise ConfigError(_origin(self.raw, key), message)

    def check(self, values: Any, schema: type, prefix: str) -> None:
        for f in dataclasses.fields(schema):
            key, value = prefix + f.name, values.get(f.name)
            if value is not None:
                for rule in f.metadata.get("rules", ()):
                    if (problem := rule(value)) is not None:
                        self.fail(key, problem)
            nested = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            if dataclasses.is_dataclass(nested):
                self.check(value, type(nested), key + ".")
            else:
                self.targets(value, key + ".")
        for key, message in getattr(schema, "cross_checks", lambda _: ())(values):
            self.fail(prefix + key, message)

    def targets(self, value: Any, prefix: str) -> None:
        """Check every `_target_` node in `value` against its registered schema."""
        if not isinstance(value, Mapping):
            return
        schema = self.registry.get(value.get("_target_"))
        if schema is None:
            for name, child in value.items():
                self.targets(child, f"{prefix}{name}.")
            return
        typed = OmegaConf.structured(schema)
        OmegaConf.set_struct(typed, not getattr(schema, "__open__", False))
        try:
            typed = OmegaConf.to_container(OmegaConf.merge(typed, value), throw_on_missing=True)
        except OmegaConfBaseException as err:
            self.fail(prefix + str(err.full_key), _first_line(err))
        self.check(typed, schema, prefix)


def _resolver_error(err: BaseException) -> MumoError | None:
    """The one-line error that one of our resolvers raised, under OmegaConf's wrappers."""
    seen: BaseException | None = err
    while seen is not None and not isinstance(seen, MumoError):
        seen = seen.__cause__ or seen.__context__
    return seen


def validate(cfg: DictConfig, schema: type, registry: Mapping[str, type]) -> None:
    """Raise a ConfigError naming the first key of `cfg` that breaks `schema` (types, rules, cross-checks)."""
    raw = OmegaConf.to_container(cfg, resolve=False)
    try:
        typed = OmegaConf.merge(OmegaConf.structured(schema), cfg)
        values = OmegaConf.to_container(typed, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        if (own := _resolver_error(err)) is not None:
            raise own from None
        raise ConfigError(_origin(raw, str(err.full_key)), _first_line(err)) from None
    Validator(raw, registry).check(values, schema, "")
