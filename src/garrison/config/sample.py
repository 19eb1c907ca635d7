"""Render settings as a commented TOML file, generated from the schema.

The description of every field becomes a comment above it, so the sample
config and the admin's `garrison.toml` document themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from garrison.config.schema import ListenerSettings, Settings


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return json.dumps(str(value), ensure_ascii=False)


def _render_fields(model: BaseModel) -> list[str]:
    lines: list[str] = []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            continue
        if field.description:
            lines.append(f"# {field.description}")
        lines.append(f"{name} = {_toml_value(value)}")
    return lines


def render_settings(settings: Settings) -> str:
    """Return `settings` as a TOML document with a comment on every key."""
    out = [
        "# Garrison configuration. Every key is optional; a missing key takes the",
        "# default shown in 'garrison config sample'.",
        "",
    ]
    for name in type(settings).model_fields:
        section = getattr(settings, name)
        if isinstance(section, BaseModel):
            out.append(f"[{name}]")
            out.extend(_render_fields(section))
            out.append("")
    out.append("# One table per listening socket.")
    for listener in settings.listeners:
        out.append("[[listeners]]")
        out.extend(_render_fields(listener))
        out.append("")
    return "\n".join(out)


def render_sample() -> str:
    """Return the documented sample config with all defaults and one listener."""
    sample = Settings(
        listeners=[ListenerSettings(name="smtp", protocol="smtp", port=25)]
    )
    return render_settings(sample)
