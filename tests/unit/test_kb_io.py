"""Knowledge base import and export: parsers for JSON, CSV and Markdown front matter, the import
report, a round trip through export, and the `omnigate kb` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dialog.knowledge import KnowledgeBase
from gateway import cli
from gateway.install_dialog import DEMO_KB
from gateway.kb_io import (
    StorageOnlyMatcher,
    export_articles,
    import_files,
    parse_csv,
    parse_front_matter,
    parse_json,
    parse_markdown,
)

MARKDOWN = """---
title: 打印机显示脱机
id: printer-offline
locale: zh-CN
category: printer
tags: [printer, "wifi, network"]
phrasings:
  - 打印机脱机了
  - 'printer offline 怎么办'
published: true
---
## 步骤

1. 重启打印机
"""

CSV = (
    "id,title,body,locale,category,tags,phrasings\n"
    'csv-refund,How do I get a refund?,"Open **Orders**, pick the order.",en,billing,billing;orders,'
    '"I want my money back|refund, please"\n'
    "csv-bad,,no title,en,billing,,\n"
    "csv-fr,Bonjour,texte,fr,billing,,\n"
    "\n"
)


def _kb(mongo: Any) -> KnowledgeBase:
    return KnowledgeBase(mongo, public_url="http://kb.test", matcher=StorageOnlyMatcher())


def test_markdown_front_matter_inline_and_block_lists() -> None:
    [row] = parse_markdown(MARKDOWN, "offline.md", default_id="offline")
    assert row.problem == "" and row.raw is not None
    assert row.raw["id"] == "printer-offline" and row.raw["title"] == "打印机显示脱机"
    assert row.raw["tags"] == ["printer", "wifi, network"]
    assert row.raw["phrasings"] == ["打印机脱机了", "printer offline 怎么办"]
    assert row.raw["body"] == "## 步骤\n\n1. 重启打印机"
    # the file name is the id when the front matter has none
    [row] = parse_markdown("---\ntitle: T\n---\nbody", "x.md", default_id="x")
    assert row.raw is not None and row.raw["id"] == "x" and row.raw["body"] == "body"
    for bad, reason in (
        ("no front matter", "no front matter"),
        ("---\ntitle: a\n  nested: b\n---\n", "line 2"),
        ("---\n- orphan\n---\n", "line 1"),
    ):
        [row] = parse_markdown(bad, "bad.md", default_id="bad")
        assert row.raw is None and reason in row.problem
    assert parse_front_matter("# comment\nkey: 'quoted: colon'\n") == {"key": "quoted: colon"}


def test_json_list_object_and_export_shape() -> None:
    rows = parse_json('[{"id": "a", "title": "A"}, 3]', "f.json")
    assert [(r.source, r.problem) for r in rows] == [("f.json#1", ""), ("f.json#2", "not an object")]
    assert parse_json('{"id": "a", "title": "A"}', "one.json")[0].raw == {"id": "a", "title": "A"}
    assert len(parse_json('{"articles": [{"id": "a"}, {"id": "b"}]}', "w.json")) == 2
    assert "not valid JSON" in parse_json("{oops", "x.json")[0].problem
    assert "must be a list" in parse_json('"text"', "x.json")[0].problem


def test_csv_header_row_lists_and_line_numbers() -> None:
    rows = parse_csv(CSV, "faq.csv")
    assert [r.source for r in rows] == ["faq.csv:2", "faq.csv:3", "faq.csv:4"]
    first = rows[0].raw
    assert first is not None and first["phrasings"] == ["I want my money back", "refund, please"]
    assert first["tags"] == "billing;orders"  # split by clean_article
    assert "no 'title' column" in parse_csv("id,name\n1,x\n", "n.csv")[0].problem
    semicolons = parse_csv("id;title;locale\ns1;Semi;en\n", "s.csv")
    assert semicolons[0].raw == {"id": "s1", "title": "Semi", "locale": "en"}


async def test_import_reports_added_updated_unchanged_and_rejected(mongo: Any, tmp_path: Path) -> None:
    (tmp_path / "offline.md").write_text(MARKDOWN, encoding="utf-8")
    (tmp_path / "faq.csv").write_text("\ufeff" + CSV, encoding="utf-8")  # with a byte order mark
    (tmp_path / "list.json").write_text(
        json.dumps([{"id": "j1", "title": "JSON one", "locale": "en"}, {"title": "no id"}]), encoding="utf-8"
    )
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    files = [tmp_path / n for n in ("offline.md", "faq.csv", "list.json", "notes.txt", "missing.json")]
    kb = _kb(mongo)
    report = await import_files(kb, files, progress=False)
    assert sorted(report.added) == ["csv-refund", "j1", "printer-offline"]
    assert report.updated == [] and report.unchanged == []
    rejected = dict(report.rejected)
    assert rejected["faq.csv:3"] == "title is required"
    assert rejected["faq.csv:4"].startswith("locale must be one of")
    assert rejected["list.json#2"].startswith("id must be")
    assert "unknown file type .txt" in rejected["notes.txt"]
    assert "cannot read the file" in rejected["missing.json"]
    assert not report.ok and "rejected faq.csv:3: title is required" in report.summary()
    stored = await kb.get("printer-offline")
    assert stored["tags"] == ["printer", "wifi, network"] and stored["version"] == 1
    refund = await kb.get("csv-refund")
    assert refund["tags"] == ["billing", "orders"] and refund["body"] == "Open **Orders**, pick the order."
    # the same files again: unchanged; an edited one: updated, with a version kept
    (tmp_path / "offline.md").write_text(
        MARKDOWN.replace("重启打印机", "重启打印机和路由器"), encoding="utf-8"
    )
    again = await import_files(kb, files[:3], progress=False)
    assert again.updated == ["printer-offline"] and sorted(again.unchanged) == ["csv-refund", "j1"]
    assert [v["version"] for v in await kb.versions("printer-offline")] == [1]


async def test_demo_knowledge_base_imports_and_round_trips_through_export(mongo: Any, tmp_path: Path) -> None:
    kb = _kb(mongo)
    files = sorted(DEMO_KB.glob("*.json"))
    report = await import_files(kb, files, progress=False)
    total = sum(len(json.loads(f.read_text(encoding="utf-8"))) for f in files)
    assert report.ok and len(report.added) == total >= 45
    exported = await export_articles(kb)
    assert len(exported) == total and [a["id"] for a in exported] == sorted(a["id"] for a in exported)
    out = tmp_path / "export.json"
    out.write_text(json.dumps(exported, ensure_ascii=False), encoding="utf-8")
    report = await import_files(kb, [out], progress=False)
    assert report.ok and len(report.unchanged) == total and not report.added and not report.updated


def test_omnigate_kb_import_and_export_commands(
    mongo_uri: str, db_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # no omnigate.toml from the working folder
    monkeypatch.setenv("OMNIGATE_MONGODB__URI", mongo_uri)
    monkeypatch.setenv("OMNIGATE_MONGODB__DATABASE", db_name)
    (tmp_path / "good.md").write_text(MARKDOWN, encoding="utf-8")
    (tmp_path / "bad.csv").write_text(CSV, encoding="utf-8")
    assert cli.main(["kb", "import", "--no-progress", str(tmp_path / "good.md")]) == 0
    assert "added 1, updated 0, unchanged 0, rejected 0" in capsys.readouterr().out
    assert (
        cli.main(["kb", "import", "--no-progress", str(tmp_path / "good.md"), str(tmp_path / "bad.csv")]) == 1
    )
    out = capsys.readouterr().out
    assert "added 1, updated 0, unchanged 1, rejected 2" in out and "bad.csv:3: title is required" in out
    assert cli.main(["kb", "export", "--out", str(tmp_path / "all.json")]) == 0
    exported = json.loads((tmp_path / "all.json").read_text(encoding="utf-8"))
    assert [a["id"] for a in exported] == ["csv-refund", "printer-offline"]
    assert cli.main(["kb", "export"]) == 0
    assert json.loads(capsys.readouterr().out) == exported
