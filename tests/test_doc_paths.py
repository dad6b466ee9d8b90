"""Every repository path that ARCHITECTURE.md and TESTING.md name exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("ARCHITECTURE.md", "TESTING.md")
SUFFIXES = (".py", ".md", ".sh", ".toml")
FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1", re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
NOT_A_PATH = re.compile(r"[\s*?<>{}\[\]$|=,;:()'\"]")  # commands, globs, placeholders, code


def looks_like_path(span: str) -> bool:
    """Whether a backticked span names a repository path rather than code or a command."""
    if "://" in span or span.startswith(("/", "~", "-", ".venv/")) or NOT_A_PATH.search(span):
        return False
    return "/" in span or span.endswith(SUFFIXES)


def named_paths(text: str) -> set[str]:
    """Paths named in backticks or as link targets, outside fenced code blocks."""
    text = FENCE.sub("", text)
    spans = {s.split("::")[0] for s in CODE.findall(text)}  # a pytest node id names its file
    links = {target.split("#")[0] for target in LINK.findall(text)}
    return {s for s in spans if looks_like_path(s)} | {
        t for t in links if t and "://" not in t and not t.startswith(("mailto:", "/"))
    }


def test_named_paths_keeps_paths_and_skips_commands_globs_and_urls():
    text = """
See `keyless/cli.py`, `tests/cipher/`, `TESTING.md`, `tests/test_cli.py::test_x`, [a](docs/x.md#y)
and [home](https://example.org/a.md). Not paths: `pytest -m "not slow"`, `tests/*.py`,
`keyless/cipher/_<name>.py`, `keyless.cipher`, `--stem`, `(N, H, W, 3)`, `.venv/bin/pytest`,
`https://x.org/a.py`, `/etc/hosts`.
```bash
.venv/bin/pytest -q tests/never/here.py
```
- a list item with a fenced block:
  ```text
  keyless/never/here.py
  ```
"""
    assert named_paths(text) == {
        "keyless/cli.py",
        "tests/cipher/",
        "TESTING.md",
        "tests/test_cli.py",
        "docs/x.md",
    }


@pytest.mark.parametrize("doc", DOCS)
def test_every_path_a_doc_names_exists(doc):
    paths = named_paths((ROOT / doc).read_text(encoding="utf-8"))
    assert len(paths) >= 5, f"{doc} names only {sorted(paths)}: is the extraction broken?"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"{doc} names paths that do not exist: {', '.join(missing)}"
