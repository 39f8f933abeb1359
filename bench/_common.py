"""Shared helpers for the benchmarks: where the corpora are, loading them, writing results.

Benchmarks are scripts, not tests: each prints its figures and writes JSON under bench/results/.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def corpora_dir() -> Path:
    """The shared corpora: $OMNIGATE_CORPORA, else shared/corpora beside the checkout (CI's layout)."""
    env = os.environ.get("OMNIGATE_CORPORA")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared" / "corpora"]
    for path in candidates:
        if (path / "knowledge").is_dir():
            return path
    raise SystemExit("corpora not found: set OMNIGATE_CORPORA to the folder holding knowledge/")


def knowledge_dir() -> Path:
    return corpora_dir() / "knowledge"


def load_stackfaq() -> list[dict[str, Any]]:
    """125 threads: ``question``, ``answer`` (list) and ``rephr`` (11 paraphrases, some "*")."""
    with open(knowledge_dir() / "stackfaq" / "stackExchange-FAQ.json", encoding="utf-8") as fh:
        data: list[dict[str, Any]] = json.load(fh)["root"]["qapair"]
    return data


def load_banking77(split: str) -> list[tuple[str, str]]:
    """(text, intent) rows of ``train`` or ``test``."""
    with open(knowledge_dir() / "banking77" / f"{split}.csv", encoding="utf-8", newline="") as fh:
        return [(row["text"], row["category"]) for row in csv.DictReader(fh)]


def load_clinc150() -> dict[str, list[tuple[str, str]]]:
    """Splits train/val/test and oos_train/oos_val/oos_test as (text, intent) pairs."""
    with open(knowledge_dir() / "clinc150" / "data_full.json", encoding="utf-8") as fh:
        raw: dict[str, list[list[str]]] = json.load(fh)
    return {k: [(t, i) for t, i in v] for k, v in raw.items()}


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def write_results(name: str, payload: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
