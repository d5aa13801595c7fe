"""The settings table of docs/operations.md, rendered from `Settings` so that the two cannot
drift: one row per field with its environment variable, default and description (the Field's
`description`; a default that needs words is the Field's `json_schema_extra={"doc_default": ...}`).
tests/unit/test_settings_doc.py fails when the document's table differs from this rendering.

    python -m adaptive_rag.settings_doc            # print the table
    python -m adaptive_rag.settings_doc --write    # replace the table in docs/operations.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from adaptive_rag.settings import REPO_ROOT, Settings

START = ("<!-- The settings table is generated from adaptive_rag/settings.py (the Field descriptions): "
         "python -m adaptive_rag.settings_doc --write -->")
END = "<!-- end of the generated settings table -->"
DOC = Path("docs") / "operations.md"  # the document that holds the table, relative to the repository


def env_name(field: str) -> str:
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def render_default(name: str, field: FieldInfo) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "doc_default" in extra:
        return str(extra["doc_default"])
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        if value in ({}, []):
            return "`{}`" if value == {} else "empty"
        raise ValueError(f"setting {name}: a computed default needs json_schema_extra={{'doc_default': ...}}")
    value = field.default
    if value is PydanticUndefined:
        raise ValueError(f"setting {name} has no default")
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def table() -> str:
    """The Markdown table of every setting, in the order `Settings` declares them."""
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    if missing:
        raise ValueError(f"settings without a description (Field(description=...)): {', '.join(missing)}")
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `{env_name(name)}` | {_cell(render_default(name, field))} | {_cell(field.description or '')} |")
    return "\n".join(rows)


def replace_table(document: str) -> str:
    """`document` with the text between the START and END markers replaced by `table()`."""
    try:
        head, rest = document.split(START + "\n", 1)
        _, tail = rest.split(END, 1)
    except ValueError:
        raise ValueError(f"{DOC.as_posix()} lacks the settings table's markers:\n{START}\n...\n{END}") from None
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        document = Path(REPO_ROOT / DOC)
        document.write_text(replace_table(document.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
