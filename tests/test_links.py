"""Every relative link in the repository's Markdown files points at a file or folder that exists
(the part before any ``#anchor``); web and mail links are not followed."""

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
INLINE = re.compile(r"!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+[\"'(][^)]*)?\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
CODE_SPAN = re.compile(r"(`+).*?\1")


def markdown_files() -> list[Path]:
    """The Markdown files git tracks or would track (untracked but not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return sorted({ROOT / name for name in listed.split("\0") if name and (ROOT / name).exists()})


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link and image outside code blocks and code spans."""
    found, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        line = CODE_SPAN.sub("", line)
        for pattern in (INLINE, REFERENCE, HTML):
            found += [(number, m.group(1).strip("<>")) for m in pattern.finditer(line)]
    return found


def broken(path: Path) -> list[str]:
    """``file:line: target`` for each relative link whose file part does not exist in the repo."""
    bad = []
    for number, target in links(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue  # http(s), mailto, ...; an anchor in the same file
        file_part = unquote(target.split("#", 1)[0].split("?", 1)[0])
        resolved = (path.parent / file_part).resolve()
        if not (resolved.is_relative_to(ROOT) and resolved.exists()):
            bad.append(f"{path.relative_to(ROOT)}:{number}: {target}")
    return bad


def test_links_are_found_outside_code_only():
    text = (
        'See [the guide](docs/guide.md#set-up) and ![grid](img/grid.png "title").\n'
        "`[not](a-link.md)` but [web](https://example.org) [mail](mailto:a@b.c) [here](#top)\n"
        "```\n[inside](fenced.md)\n```\n"
        "[ref]: <records/run one.json>\n"
        '<img src="chart.png" width="400">\n'
    )
    assert links(text) == [
        (1, "docs/guide.md#set-up"), (1, "img/grid.png"), (2, "https://example.org"),
        (2, "mailto:a@b.c"), (2, "#top"), (6, "records/run one.json"), (7, "chart.png"),
    ]  # fmt: skip


def test_broken_links_are_reported_with_file_and_line(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    monkeypatch.setattr(f"{__name__}.ROOT", root)
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.md").write_text("ok\n")
    (tmp_path / "elsewhere.md").touch()  # exists, but outside the repository
    page = root / "README.md"
    page.write_text("[a](docs/a.md#x) [b](docs/b.md) [out](../elsewhere.md) [w](https://x.y)\n")
    assert broken(page) == ["README.md:1: docs/b.md", "README.md:1: ../elsewhere.md"]


def test_every_relative_markdown_link_resolves():
    files = markdown_files()
    assert ROOT / "README.md" in files
    bad = [line for path in files for line in broken(path)]
    assert not bad, "broken relative links:\n" + "\n".join(bad)
