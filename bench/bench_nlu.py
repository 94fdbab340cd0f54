"""NLU benchmark on CLINC150 val: accuracy, out-of-scope recall, latency, throughput, load and training time.

Run from the repository root: ``python -m bench.bench_nlu`` (add ``--tune-on-val`` to tune on CLINC150 val
instead of a split carved from train; the default never lets the reported split influence the model).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nlu import FALLBACK_INTENT, TrainingConfig, evaluate, load_model, load_training_data, save_model, train
from nlu.encoder import forget_encoders
from nlu.nonsense import generate_nonsense

CLINC_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150"
PAPER_ROWS = (  # Larson et al. 2019, Table (Full setting): in-scope accuracy / out-of-scope recall
    ("Rasa (paper, test)", 91.5, 45.3),
    ("DialogFlow (paper, test)", 91.7, 14.0),
    ("SVM (paper, test)", 91.0, 14.5),
    ("MLP (paper, test)", 93.5, 47.4),
    ("BERT (paper, test)", 96.9, 40.3),
    ("BERT + threshold (paper, test)", 96.2, 52.3),
)


def main(argv: list[str] | None = None) -> int:
    """Train, save, load and measure; print the figures beside the paper's rows."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=CLINC_DIR)
    parser.add_argument("--tune-on-val", action="store_true", help="tune on val (the issue allows it)")
    parser.add_argument("--max-accuracy-drop", type=float, default=TrainingConfig().max_accuracy_drop)
    parser.add_argument(
        "--target-oos-recall",
        type=float,
        default=TrainingConfig().target_out_of_scope_recall,
        help="out-of-scope recall the fallback tuning aims for at the least in-scope cost (0: most recall)",
    )
    parser.add_argument("--latency-samples", type=int, default=3100)
    parser.add_argument(
        "--no-encoder", action="store_true", help="n-gram features only (no sentence encoder)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    data_dir: Path = args.data_dir
    if not data_dir.is_dir():
        print(f"CLINC150 not found at {data_dir}; nothing to measure")
        return 1
    train_data = load_training_data([data_dir / "train.csv", data_dir / "oos_train.csv"])
    val_data = load_training_data([data_dir / "val.csv", data_dir / "oos_val.csv"])

    started = time.perf_counter()
    target = args.target_oos_recall if args.target_oos_recall and args.target_oos_recall > 0 else None
    config = TrainingConfig(
        max_accuracy_drop=args.max_accuracy_drop,
        target_out_of_scope_recall=target,
        sentence_encoder=None if args.no_encoder else TrainingConfig().sentence_encoder,
    )
    model = train(train_data, config=config, validation=val_data if args.tune_on_val else None)
    train_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "clinc150"
        save_model(model, model_dir)
        forget_encoders()  # time a cold load: the sentence encoder's weights are read again
        started = time.perf_counter()
        loaded = load_model(model_dir)
        load_s = time.perf_counter() - started

    report = evaluate(loaded, val_data)
    nonsense = generate_nonsense(600, random_state=987_654, known_texts=[*train_data.texts, *val_data.texts])
    nonsense_fallback = np.mean([r.intent.name == FALLBACK_INTENT for r in loaded.parse_batch(nonsense)])
    texts = val_data.texts
    for text in texts[:200]:  # warm-up
        loaded.parse(text)
    latencies = []
    for text in texts[: args.latency_samples]:
        begin = time.perf_counter()
        loaded.parse(text)
        latencies.append((time.perf_counter() - begin) * 1000)
    throughputs = []
    for _ in range(3):
        begin = time.perf_counter()
        loaded.parse_batch(texts)
        throughputs.append(len(texts) / (time.perf_counter() - begin))

    in_scope = 100 * (report.in_scope_accuracy or 0.0)
    oos = 100 * (report.out_of_scope_recall or 0.0)
    tuning = "CLINC150 val" if args.tune_on_val else "20% split of train"
    tuning += f" (at most {100 * args.max_accuracy_drop:g} points of in-scope accuracy lost to fallback"
    tuning += f", aiming at {100 * target:g}% oos recall)" if target is not None else ")"
    print(f"CLINC150 val ({len(texts)} messages); trained on train + oos_train; tuned on {tuning}")
    print(f"{'system':34s} {'in-scope acc':>12s} {'oos recall':>10s}")
    for name, accuracy, recall in PAPER_ROWS:
        print(f"{name:34s} {accuracy:12.1f} {recall:10.1f}")
    name = "Rapport NLU, n-grams only (val)" if args.no_encoder else "Rapport NLU (val)"
    print(f"{name:34s} {in_scope:12.2f} {oos:10.2f}")
    policy = loaded.policy
    print(
        f"\nmacro F1 {100 * report.macro_f1:.2f}  C={loaded.classifier.C}  "
        f"embedding weight={loaded.classifier.dense_weight}  "
        f"SVM alone from confidence {loaded.classifier.skip_confidence}  "
        f"temperature={loaded.classifier.temperature:.3f}"
        f"  threshold={policy.threshold:.3f}  ambiguity={policy.ambiguity_threshold:.3f}"
    )
    print(
        f"single parse p50 {np.percentile(latencies, 50):.3f} ms  p99 {np.percentile(latencies, 99):.3f} ms  "
        f"mean {statistics.fmean(latencies):.3f} ms"
    )
    print(f"batch {max(throughputs):,.0f} messages/s  model load {load_s:.3f} s  training {train_s:.1f} s")
    print(
        f"generated nonsense (unseen seed, {len(nonsense)} strings) falling back: "
        f"{100 * nonsense_fallback:.1f}%"
        f"  (validation check: {loaded.metadata['metrics'].get('validation_nonsense_recall')})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
