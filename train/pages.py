"""What the HTML reports share: a Jinja2 environment, embedded PNGs, the page self-check, Markdown tables."""

from __future__ import annotations

import base64

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table; pipes and newlines in cells are escaped."""
    def clean(cell) -> str:
        return str(cell).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(map(clean, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(clean, row)) + " |" for row in rows]
    return "\n".join(lines)


def page_environment(package: str) -> Environment:
    """Templates from `package`/templates, plus the shared ones in train/templates (page_check.html.j2).

    HTML templates are autoescaped; JSON embedded with `tojson` keeps Cyrillic as is
    (a third of the bytes of \\u escapes).
    """
    environment = Environment(loader=ChoiceLoader([PackageLoader(package), PackageLoader("train")]),
                              autoescape=select_autoescape(["html.j2"]), undefined=StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    environment.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}
    environment.filters["data_uri"] = png_data_uri
    return environment
