"""Knowledge base import and export: the parsers (JSON, CSV, Markdown with front matter) and the
import loop behind `omnigate kb import` / `omnigate kb export`, testable without the command line.

Every row is validated by `clean_article`, the same check the REST API uses; a bad row is reported
with its file, row and reason and the rest of the import goes on.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dialog.knowledge import LIST_FIELDS, KnowledgeBase
from dialog.matcher import Article, KnowledgeMatcher
from ticket_core.errors import InvalidInput

MAX_FILE_BYTES = 50 * 1024 * 1024
EXPORT_FIELDS = ("id", "title", "body", "locale", "category", *LIST_FIELDS, "published")
MARKDOWN_SUFFIXES = (".md", ".markdown")


@dataclass(frozen=True)
class Row:
    """One article read from a file, or why it could not be read."""

    source: str  # "faq.csv:3" (a CSV line), "faq.json#2" (a list position), "a.md"
    raw: Mapping[str, Any] | None
    problem: str = ""


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)

    @property
    def ok(self) -> bool:
        return not self.rejected

    def summary(self) -> str:
        lines = [
            f"added {len(self.added)}, updated {len(self.updated)}, "
            f"unchanged {len(self.unchanged)}, rejected {len(self.rejected)}"
        ]
        lines += [f"  rejected {source}: {reason}" for source, reason in self.rejected]
        return "\n".join(lines)


# -- parsers ------------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    # utf-8-sig: spreadsheet programs put a byte order mark before CSV they save as UTF-8
    return path.read_bytes().decode("utf-8-sig")


def parse_json(text: str, name: str) -> list[Row]:
    """A list of articles, one article object, or {"articles": [...]} (what `kb export` writes)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [Row(name, None, f"not valid JSON: {exc.msg} (line {exc.lineno})")]
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        data = data["articles"]
    if isinstance(data, dict):
        return [Row(name, data)]
    if not isinstance(data, list):
        return [Row(name, None, "JSON must be a list of articles or one article object")]
    return [
        Row(f"{name}#{i}", item) if isinstance(item, dict) else Row(f"{name}#{i}", None, "not an object")
        for i, item in enumerate(data, 1)
    ]


def _csv_value(name: str, value: str) -> Any:
    # A list cell may use "|" so that a phrasing can contain commas; otherwise clean_article splits
    # on commas and semicolons.
    if name in LIST_FIELDS and "|" in value:
        return [v for v in value.split("|")]
    return value


def parse_csv(text: str, name: str) -> list[Row]:
    """A header row naming the fields (id, title, body, locale, category, tags, ...), one article a row."""
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
    if not reader.fieldnames:
        return [Row(name, None, "no header row")]
    headers = [h.strip().lower() for h in reader.fieldnames]
    if "title" not in headers:
        return [Row(name, None, "the header row has no 'title' column")]
    reader.fieldnames = headers
    rows: list[Row] = []
    try:
        for record in reader:
            source = f"{name}:{reader.line_num}"
            if None in record:
                rows.append(Row(source, None, "more cells than header columns"))
                continue
            values = {k: _csv_value(k, v.strip()) for k, v in record.items() if k and v is not None}
            if not any(values.values()):
                continue  # a blank line at the end of a spreadsheet export
            rows.append(Row(source, values))
    except csv.Error as exc:
        rows.append(Row(f"{name}:{reader.line_num}", None, f"unreadable CSV: {exc}"))
    return rows


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_KEY_LINE = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:[ \t]*(.*)$")


def _scalar(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _inline_list(value: str) -> list[str]:
    inner = value.strip()[1:-1]
    items = next(csv.reader([inner], skipinitialspace=True), [])
    return [_scalar(item) for item in items if item.strip()]


def parse_front_matter(block: str) -> dict[str, Any]:
    """The YAML subset articles use: `key: value`, `key: [a, "b, c"]`, and block lists of `- item`.
    Not a YAML parser: anything else raises ValueError naming the line."""
    values: dict[str, Any] = {}
    current_list: list[str] | None = None
    for number, line in enumerate(block.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        stripped = line.strip()
        if stripped.startswith("- ") or stripped == "-":
            if current_list is None:
                raise ValueError(f"front matter line {number}: a list item without a key above it")
            current_list.append(_scalar(stripped[1:]))
            continue
        match = _KEY_LINE.match(line)
        if match is None or line[0].isspace():
            raise ValueError(f"front matter line {number}: expected 'key: value'")
        key, value = match.group(1).lower(), match.group(2).strip()
        current_list = None
        if value.startswith("[") and value.endswith("]"):
            values[key] = _inline_list(value)
        elif value == "":
            current_list = values[key] = []
        else:
            values[key] = _scalar(value)
    return values


def parse_markdown(text: str, name: str, *, default_id: str) -> list[Row]:
    match = _FRONT_MATTER.match(text)
    if match is None:
        return [Row(name, None, "no front matter (a '---' block with at least a title)")]
    try:
        meta = parse_front_matter(match.group(1))
    except ValueError as exc:
        return [Row(name, None, str(exc))]
    meta.setdefault("id", default_id)
    meta["body"] = text[match.end() :].strip("\r\n")
    return [Row(name, meta)]


def parse_file(path: Path) -> list[Row]:
    name = path.name
    try:
        text = _read_text(path)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return [Row(name, None, f"cannot read the file: {reason}")]
    suffix = path.suffix.lower()
    if suffix == ".json":
        return parse_json(text, name)
    if suffix == ".csv":
        return parse_csv(text, name)
    if suffix in MARKDOWN_SUFFIXES:
        return parse_markdown(text, name, default_id=path.stem)
    return [Row(name, None, f"unknown file type {suffix or '(none)'}: use .json, .csv or .md")]


# -- import and export --------------------------------------------------------------------------------


def _reason(exc: InvalidInput) -> str:
    if exc.fields:
        return "; ".join(f"{k} {v}" for k, v in exc.fields.items())
    return str(exc)


async def import_rows(
    kb: KnowledgeBase, rows: Sequence[Row], *, actor: str = "kb-import", progress: bool = True
) -> ImportReport:
    report = ImportReport()
    with tqdm(total=len(rows), unit="article", desc="kb import", disable=not progress) as bar:
        for row in rows:
            bar.update(1)
            if row.raw is None:
                report.rejected.append((row.source, row.problem))
                continue
            try:
                doc, outcome = await kb.save(row.raw, actor=actor)
            except InvalidInput as exc:
                report.rejected.append((row.source, _reason(exc)))
                continue
            {"created": report.added, "updated": report.updated}.get(outcome, report.unchanged).append(
                str(doc["_id"])
            )
    return report


async def import_files(
    kb: KnowledgeBase, paths: Iterable[Path], *, actor: str = "kb-import", progress: bool = True
) -> ImportReport:
    rows = [row for path in paths for row in parse_file(path)]
    return await import_rows(kb, rows, actor=actor, progress=progress)


async def export_articles(kb: KnowledgeBase) -> list[dict[str, Any]]:
    """Every stored article, published or not, in the shape `import` reads back unchanged."""
    articles: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = await kb.search(after=after, limit=500)
        if not page:
            return articles
        for doc in page:
            articles.append({name: doc.get("_id" if name == "id" else name) for name in EXPORT_FIELDS})
        after = str(page[-1]["_id"])


class StorageOnlyMatcher(KnowledgeMatcher):
    """For command-line tools: articles go to the database and the running server re-indexes them
    (the version counter tells it to); analysing each one here as well would only cost time."""

    def upsert(self, article: Article) -> None:
        return None
