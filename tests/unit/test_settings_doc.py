"""docs/operations.md's settings table is the one rendered from `Settings`
(adaptive_rag/settings_doc.py): every setting, its ARAG_ variable, its real default and its Field
description. The README links to it instead of holding a copy."""

from adaptive_rag.settings import Settings
from adaptive_rag.settings_doc import DOC, END, START, replace_table, table
from tests.conftest import REPO


def test_the_operations_settings_table_is_generated_from_settings():
    document = (REPO / DOC).read_text(encoding="utf-8")
    assert document.count(START) == 1 and document.count(END) == 1
    assert replace_table(document) == document, (
        f"{DOC.as_posix()}'s settings table differs from Settings: run `python -m adaptive_rag.settings_doc --write` "
        "(descriptions live in adaptive_rag/settings.py)")


def test_the_readme_links_the_table_and_holds_no_copy():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert START not in readme and "| variable | default | meaning |" not in readme
    assert DOC.as_posix() in readme


def test_every_setting_is_a_row_with_its_code_default():
    rows = {line.split(" | ")[0].strip("| `"): line for line in table().splitlines()[2:]}
    assert set(rows) == {f"ARAG_{name.upper()}" for name in Settings.model_fields}
    assert Settings.model_fields["embedder_quantize"].default is True
    assert rows["ARAG_EMBEDDER_QUANTIZE"].startswith("| `ARAG_EMBEDDER_QUANTIZE` | `true` |")  # int8 by default
    assert rows["ARAG_CHUNK_SIZE"].startswith("| `ARAG_CHUNK_SIZE` | `200` |")
    assert rows["ARAG_STRONG_MODEL"].startswith("| `ARAG_STRONG_MODEL` | unset |")
