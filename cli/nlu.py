"""`rapport nlu`: train, parse, evaluate and serve the Rasa-compatible NLU engine."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from cli.common import get_settings

if TYPE_CHECKING:  # the NLU engine pulls in scikit-learn and SciPy: each command imports it
    from nlu import NLUModel

app = typer.Typer(
    help="Rasa-compatible NLU: intents, entities and out-of-scope detection.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)
_BATCH = 1000


def _fail(message: str) -> NoReturn:
    """One red line on stderr and a non-zero exit, never a traceback."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(1)


def _load(model_dir: Path) -> NLUModel:
    from nlu import NLUError, load_model

    try:
        return load_model(model_dir)
    except NLUError as exc:
        _fail(str(exc))


@app.command("train")
def train_command(
    data: list[Path] = typer.Option(..., "--data", help="Rasa YAML / CSV files or folders (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Directory to write the model to."),
    validation: list[Path] | None = typer.Option(
        None, "--validation", help="Tune on these files instead of a split carved from --data."
    ),
    no_encoder: bool = typer.Option(
        False,
        "--no-encoder",
        help="N-gram features only: no sentence encoder (less accurate, ~2x faster batch parsing).",
    ),
) -> None:
    """Train a model from training data and save it."""
    from nlu import NLUError, TrainingConfig, load_training_data, save_model, train

    started = time.perf_counter()
    try:
        training = load_training_data(data)
        held_out = load_training_data(validation) if validation else None
        config = TrainingConfig(sentence_encoder=None) if no_encoder else TrainingConfig()
        model = train(training, config=config, validation=held_out)
        save_model(model, out)
    except (NLUError, OSError) as exc:
        _fail(str(exc))
    metrics = model.metadata.get("metrics", {})
    err_console.print(
        f"trained {len(model.labels)} intents from {len(training.examples)} examples in "
        f"{time.perf_counter() - started:.1f}s -> {out} (validation: {json.dumps(metrics)})",
        highlight=False,
        soft_wrap=True,
    )


def _chunks(lines: Iterator[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    for line in lines:
        chunk.append(line.rstrip("\r\n"))
        if len(chunk) >= _BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@app.command("parse")
def parse_command(model: Path = typer.Option(..., "--model", help="Model directory.")) -> None:
    """Read one text per line on stdin; write one Rasa parse JSON per line on stdout, in order."""
    parser = _load(model)
    for chunk in _chunks(iter(sys.stdin)):
        for result in parser.parse_batch(chunk):
            sys.stdout.write(json.dumps(result.to_rasa(), ensure_ascii=False) + "\n")
        sys.stdout.flush()


@app.command("evaluate")
def evaluate_command(
    model: Path = typer.Option(..., "--model", help="Model directory."),
    data: list[Path] = typer.Option(..., "--data", help="Labelled test data (Rasa YAML / CSV)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
) -> None:
    """Accuracy, macro F1, per-intent scores, out-of-scope recall and the most confused pairs."""
    from nlu import NLUError, evaluate, load_training_data

    parser = _load(model)
    try:
        report = evaluate(parser, load_training_data(data))
    except NLUError as exc:
        _fail(str(exc))
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    console = Console()

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f}%"

    console.print(
        f"examples {report.n_examples}  accuracy {pct(report.accuracy)}  in-scope accuracy "
        f"{pct(report.in_scope_accuracy)}  out-of-scope recall {pct(report.out_of_scope_recall)}  "
        f"macro F1 {pct(report.macro_f1)}  fallback rate {pct(report.fallback_rate)}",
        highlight=False,
    )
    table = Table("intent", "precision", "recall", "F1", "support")
    for row in report.per_intent:
        table.add_row(
            row.intent, f"{row.precision:.3f}", f"{row.recall:.3f}", f"{row.f1:.3f}", str(row.support)
        )
    console.print(table)
    if report.confused_pairs:
        confused = Table("true intent", "predicted", "count", title="most confused")
        for true, predicted, count in report.confused_pairs:
            confused.add_row(true, predicted, str(count))
        console.print(confused)


@app.command("serve")
def serve_command(
    port: int = typer.Option(5005, "--port", help="TCP port (Rasa's default is 5005)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="Model directory; default: the bot's model (RAPPORT_NLU_MODEL_DIR, RAPPORT_NLU_DATA), "
        "trained on first use.",
    ),
    auth_token: str | None = typer.Option(
        None,
        "--auth-token",
        envvar="RAPPORT_NLU_AUTH_TOKEN",
        help="Require ?token=T on /model/parse and /status, as Rasa's --auth-token does. "
        "Needed to listen beyond 127.0.0.1.",
    ),
) -> None:
    """Answer Rasa's HTTP API: POST /model/parse, GET / and GET /status."""
    import ipaddress

    from nlu import NLUError, default_data_paths, load_or_train_default
    from nlu.additions import DeploymentData
    from nlu.server import run_server

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not auth_token and not loopback:
        _fail(f"refusing to serve on {host} without --auth-token: anyone on the network could use it")

    if model is None:
        settings = get_settings()
        model_dir = settings.resolved_nlu_model_dir
        try:
            data = DeploymentData(settings.nlu_additions_dir, settings.nlu_data or default_data_paths())
            parser = load_or_train_default(model_dir, data_paths=data.training_paths())
        except (NLUError, OSError) as exc:
            _fail(str(exc))
    else:
        model_dir = model
        parser = _load(model)
    status = {"model_file": str(model_dir), "model_id": parser.metadata.get("data_hash", "")}
    try:
        run_server(parser, host=host, port=port, status=status, auth_token=auth_token)
    except OSError as exc:
        _fail(f"cannot serve on {host}:{port}: {exc}")
