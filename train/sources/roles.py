"""The roles table (train/sources/roles.yaml, optionally merged with the user's): who a role phrase or alias means."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from train.errors import UserError
from train.sources.schema import ANONYMOUS_NAMES

SIDES = ("russia", "us", "other")
DEFAULT_ROLES = "roles.yaml"  # package data of train.sources


class RolesError(UserError):
    """A roles table that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Person:
    name: str
    side: str
    aliases: tuple[str, ...]
    roles: tuple[str, ...]
    valid_from: dt.date | None = None  # when the person held the roles listed
    valid_to: dt.date | None = None

    def holds_roles_on(self, day: dt.date | None) -> bool:
        if day is None:
            return True
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class Organization:
    name: str
    side: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class AnonymousGroup:
    name: str
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class RolesTable:
    version: str  # the default table's version, plus the user table's file name and hash when one is merged
    people: tuple[Person, ...]
    organizations: tuple[Organization, ...]
    anonymous: tuple[AnonymousGroup, ...]

    def side_of(self, name: str) -> str | None:
        for entry in (*self.people, *self.organizations):
            if entry.name == name:
                return entry.side
        return None

    def is_person(self, name: str) -> bool:
        return any(p.name == name for p in self.people)


def _date(value: Any, where: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise RolesError(f"{where}: date {value!r} must be YYYY-MM-DD or null") from None


def _strings(entry: dict, key: str, where: str) -> tuple[str, ...]:
    values = entry.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
        raise RolesError(f"{where}: '{key}' must be a list of phrases")
    return tuple(values)


def _entries(raw: dict, section: str, path: str) -> list[tuple[str, dict]]:
    entries = raw.get(section) or []
    if not isinstance(entries, list):
        raise RolesError(f"{path}: '{section}' must be a list of entries")
    out = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: {section} entry {number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise RolesError(f"{where}: each entry needs a 'name' (the canonical name in the nominative)")
        if section != "anonymous" and entry.get("side") not in SIDES:
            raise RolesError(f"{where} ({entry['name']}): side {entry.get('side')!r} must be one of {', '.join(SIDES)}")
        if section == "anonymous" and entry["name"] not in ANONYMOUS_NAMES:
            raise RolesError(f"{where}: anonymous name {entry['name']!r} must be one of {', '.join(ANONYMOUS_NAMES)}")
        out.append((where, entry))
    return out


def _parse(raw: Any, path: str) -> dict[str, dict[str, Any]]:
    """One table's entries by section and name, as typed objects."""
    if not isinstance(raw, dict):
        raise RolesError(f"{path}: expected a mapping with people, organizations and anonymous")
    people = {e["name"]: Person(e["name"], e["side"], _strings(e, "aliases", w), _strings(e, "roles", w),
                                _date(e.get("from"), w), _date(e.get("to"), w))
              for w, e in _entries(raw, "people", path)}
    organizations = {e["name"]: Organization(e["name"], e["side"], _strings(e, "aliases", w))
                     for w, e in _entries(raw, "organizations", path)}
    anonymous = {e["name"]: AnonymousGroup(e["name"], _strings(e, "phrases", w))
                 for w, e in _entries(raw, "anonymous", path)}
    return {"people": people, "organizations": organizations, "anonymous": anonymous}


def _read(text: str, path: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RolesError(f"{path}: not valid YAML ({e})") from None


def load_roles(user_table: str | Path | None = None) -> RolesTable:
    """The packaged table, with `user_table` (the config key `sources.roles`) merged over it by name."""
    default_text = resources.files("train.sources").joinpath(DEFAULT_ROLES).read_text(encoding="utf-8")
    raw = _read(default_text, f"train/sources/{DEFAULT_ROLES}")
    sections = _parse(raw, f"train/sources/{DEFAULT_ROLES}")
    version = str(raw.get("version", "unversioned"))
    if user_table:
        path = Path(user_table)
        if not path.is_file():
            raise RolesError(f"{path}: roles table not found (config key sources.roles)")
        text = path.read_text(encoding="utf-8")
        for section, entries in _parse(_read(text, str(path)), str(path)).items():
            sections[section].update(entries)  # a user entry replaces the default one of the same name
        version += f"+{path.name}@{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return RolesTable(version, tuple(sections["people"].values()), tuple(sections["organizations"].values()),
                      tuple(sections["anonymous"].values()))
