"""README.md and docs/: every relative link resolves (a file, and a heading for a #anchor, slugged
as GitHub does), and README stays a front page."""

import re
from pathlib import Path

import pytest

from imdb_sentiment.paths import REPO_ROOT

README_MAX_LINES = 250
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...


def prose(text: str) -> str:
    """The text without code blocks and code spans, where brackets are code, not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, links and markup dropped, every
    character that is not a letter, digit, space, '-' or '_' removed, spaces made dashes."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a markdown file; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    """Each relative link of `page` whose file, or whose anchor in it, is not there."""
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO_ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_the_docs_pages_are_there_and_readme_links_each():
    names = {page.name for page in PAGES}
    assert {"families.md", "tracking.md", "hardware.md", "search.md", "combining.md", "analysis.md",
            "testing.md"} <= names
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"](docs/{page.name})" in readme for page in PAGES[1:])


def test_readme_is_a_front_page():
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the reference goes to docs/"


def test_a_broken_link_or_anchor_is_found(tmp_path):
    """The checker can fail: a missing file, a missing heading, and the forms it must leave alone."""
    (tmp_path / "other.md").write_text("# Other page\n\n" + "## Set-up: the `make` targets\n\n" * 2)
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md) [fine](other.md#other-page) [fine](other.md#set-up-the-make-targets-1)\n"
        "[fine](#page) ![fine](other.md) [external](https://example.com/missing.md#nowhere)\n"
        "`[code](missing.md)`\n\n```\n[code](missing.md)\n```\n\n"
        "[gone](missing.md) [no heading](other.md#set-up) ![no image](figures/none.png) [here](#nope)\n")
    assert broken_links(page) == [
        f"missing.md: no file {tmp_path / 'missing.md'}",
        "other.md#set-up: no heading #set-up in other.md",
        f"figures/none.png: no file {tmp_path / 'figures' / 'none.png'}",
        "#nope: no heading #nope in page.md"]


def test_github_slugs():
    assert slug("Reliability: what is guaranteed, and the test that shows it") == \
        "reliability-what-is-guaranteed-and-the-test-that-shows-it"
    assert slug("Word-embedding families: GRU, CNN, CNN-LSTM") == "word-embedding-families-gru-cnn-cnn-lstm"
    assert slug("On a CPU: all-MiniLM-L6-v2") == "on-a-cpu-all-minilm-l6-v2"
    assert slug("Train a model: `make train-lstm`") == "train-a-model-make-train-lstm"
