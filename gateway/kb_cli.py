"""`omnigate kb import FILE...` and `omnigate kb export [--out FILE]`.

Both attach to a running server's embedded database (like `token create`) or start it; a running
server notices imported articles through the knowledge version counter within a few seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dialog.knowledge import KnowledgeBase
from gateway.config import Settings
from gateway.database import Database
from gateway.kb_io import StorageOnlyMatcher, export_articles, import_files


def add_parser(sub: Any) -> None:
    kb = sub.add_parser("kb", help="knowledge base import and export").add_subparsers(
        dest="kb_command", required=True
    )
    load = kb.add_parser(
        "import", help="import articles from JSON, CSV (header row) or Markdown with front matter"
    )
    load.add_argument("files", nargs="+", type=Path, metavar="FILE")
    load.add_argument("--no-progress", action="store_true", help="no progress bar")
    dump = kb.add_parser("export", help="write every article as JSON (re-importable)")
    dump.add_argument("--out", type=Path, help="file to write (default: standard output)")


def _kb(settings: Settings, database: Database) -> KnowledgeBase:
    return KnowledgeBase(database.db, public_url=settings.server.public_url, matcher=StorageOnlyMatcher())


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Exit code 1 when any row was rejected, so scripts notice a partial import."""
    async with Database(settings, reuse_running=True) as database:
        kb = _kb(settings, database)
        if args.kb_command == "import":
            report = await import_files(kb, args.files, progress=not args.no_progress)
            print(report.summary())
            return 0 if report.ok else 1
        articles = await export_articles(kb)
    text = json.dumps(articles, ensure_ascii=False, indent=1) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"exported {len(articles)} article(s) to {args.out}", file=sys.stderr)
    return 0
