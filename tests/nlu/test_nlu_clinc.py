"""A CLINC150 slice read from tests/data/clinc150: the engine learns real crowd-sourced intents."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from nlu import evaluate, reads_csv, train

CLINC_DIR = Path(__file__).resolve().parents[1] / "data" / "clinc150"

pytestmark = pytest.mark.skipif(not CLINC_DIR.is_dir(), reason=f"CLINC150 not found at {CLINC_DIR}")


def _slice(names: list[str], intents: set[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "intent"])
    for name in names:
        with (CLINC_DIR / name).open(encoding="utf-8") as handle:
            writer.writerows(
                [r["text"], r["intent"]] for r in csv.DictReader(handle) if r["intent"] in intents
            )
    return out.getvalue()


def test_clinc_slice_with_out_of_scope() -> None:
    with (CLINC_DIR / "train.csv").open(encoding="utf-8") as handle:
        chosen = {*sorted({r["intent"] for r in csv.DictReader(handle)})[:20], "oos"}
    train_data = reads_csv(_slice(["train.csv", "oos_train.csv"], chosen))
    val_data = reads_csv(_slice(["val.csv", "oos_val.csv"], chosen))
    assert "out_of_scope" in train_data.intents
    report = evaluate(train(train_data), val_data)
    assert report.in_scope_accuracy is not None and report.in_scope_accuracy >= 0.9
    assert report.out_of_scope_recall is not None and report.out_of_scope_recall >= 0.5
