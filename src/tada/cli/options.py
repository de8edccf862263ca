"""Click options generated from the options model (:mod:`tada.options`) and the method registry.

Every flag of ``tada merge`` comes from a dataclass field: :class:`tada.options.MergeOptions` for the
merge itself and each registered method's parameter dataclass for ``--density``, ``--delta``…, so a
method parameter added to its dataclass is a flag, a YAML key and an API keyword at once.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import click
import yaml

from ..errors import TadaError
from ..options import Option, options_of


class NumberOrAuto(click.ParamType):
    """A positive number or the word ``auto``."""

    name = "auto|NUMBER"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) or value == "auto":
            return value
        try:
            return float(value)
        except ValueError:
            self.fail(f"expected auto or a number, got {value!r}", param, ctx)


def pairs(values: Iterable[str], flag: str) -> dict:
    """``("value=1.2", "o_proj=1.5")`` → dict with YAML-parsed values."""
    out = {}
    for item in values:
        if "=" not in item:
            raise TadaError(f"{flag} expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise TadaError(f"{flag} {key}: cannot parse value {raw!r}") from None
    return out


def numbers(text: str, flag: str) -> tuple[float, ...]:
    """``"0.5,0.5"`` → ``(0.5, 0.5)``."""
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise TadaError(f"{flag} expects numbers separated by commas like 0.5,0.5, got {text!r}") from None


def click_option(o: Option, help_text: str | None = None) -> Callable:
    """The click option of one field: given values only (``None`` = not given, so a YAML or the
    field's default applies)."""
    text = o.help if help_text is None else help_text
    if o.bounds is not None:
        text = f"{text} ({o.bounds})"
    if help_text is None and o.default not in (None, False) and o.default != {} and o.kind != "bool":
        text = f"{text} [default: {_shown(o.default)}]"
    if o.kind == "bool":
        return click.option(o.flag, o.name, is_flag=True, default=None, help=text)
    if o.kind == "mapping":
        return click.option(o.flag, o.name, multiple=True, metavar="KEY=VALUE", help=text)
    if o.kind == "pair":
        return click.option(o.flag, o.name, metavar="A,B", help=text)
    if o.kind == "many":
        return click.option(o.flag, o.name, multiple=True, help=text)
    if o.kind == "number_or_auto":
        return click.option(o.flag, o.name, type=NumberOrAuto(), help=text)
    # choices and bounds are checked by tada.options.build (one validator for API, YAML and CLI)
    metavar = "[" + "|".join(o.choices) + "]" if o.choices else None
    kind: Any = {"int": int, "float": float, "str": str}[o.kind]
    return click.option(o.flag, o.name, type=kind, metavar=metavar, help=text)


def add_options(options: list[Option], help_texts: dict[str, str] | None = None) -> Callable:
    """Decorator: one click option per CLI-visible field, in field order."""

    def wrap(f):
        for o in reversed([o for o in options if o.cli]):
            f = click_option(o, (help_texts or {}).get(o.name))(f)
        return f

    return wrap


def given(values: dict[str, Any], options: list[Option]) -> dict[str, Any]:
    """The values the user gave, parsed: pairs to tuples, KEY=VALUE lists to dicts, absent ones dropped."""
    out = {}
    for o in options:
        value = values.get(o.name)
        if value is None or value == ():
            continue
        if o.kind == "pair":
            value = numbers(value, o.flag)
        elif o.kind == "mapping":
            value = pairs(value, o.flag)
        elif o.kind == "many":
            value = value[0] if len(value) == 1 else list(value)
        out[o.name] = value
    return out


def method_options() -> tuple[list[Option], dict[str, str]]:
    """One option per parameter name over every registered method (first declaration wins; the
    registry test checks that every method declares a shared name with the same kind and flag),
    and its help text naming the methods that take it and their defaults."""
    from ..methods import REGISTRY, bench_methods  # imports torch: only for the commands that need it

    order = [*bench_methods(), *sorted(set(REGISTRY) - set(bench_methods()))]
    options: dict[str, Option] = {}
    defaults: dict[str, dict[str, list[str]]] = {}
    for name in order:
        for o in options_of(REGISTRY[name].params):
            options.setdefault(o.name, o)
            defaults.setdefault(o.name, {}).setdefault(_shown(o.default), []).append(name)
    helps = {}
    for key, o in options.items():
        by_default = "; ".join(f"{'/'.join(ms)} {value}" for value, ms in defaults[key].items())
        helps[key] = f"{o.help} [{by_default}]"
    return list(options.values()), helps


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" for v in value)
    if isinstance(value, dict):
        return "none" if not value else str(value)
    return str(value)


_FIELD = re.compile(r"`([a-z][a-z0-9_]*)`")


def flag_map(command: click.Command, ctx: click.Context | None = None) -> dict[str, str]:
    """Field name → flag of one command, or over every command of a group (sub-groups included;
    lazily loaded commands are loaded)."""
    if not isinstance(command, click.Group):
        return {p.name: max(p.opts, key=len) for p in command.params if isinstance(p, click.Option) and p.name}
    out: dict[str, str] = {}
    ctx = ctx or click.Context(command)
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is None:
            continue
        if isinstance(sub, click.Group):
            out.update(flag_map(sub, ctx))
            continue
        for field_name, flag in flag_map(sub).items():
            out.setdefault(field_name, flag)
    return out


def as_flags(message: str, flags: dict[str, str]) -> str:
    """A library error (fields in backquotes) as the CLI says it: ```domain_probe``` → ``--domain-probe``."""
    return _FIELD.sub(lambda m: flags.get(m.group(1), m.group(0)), message)
