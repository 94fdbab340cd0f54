"""RemoteRasaParser against a small local HTTP server that answers in Rasa's documented shape."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nlu import NLUModel, RemoteRasaParser


class _RasaHandler(BaseHTTPRequestHandler):
    """Rasa-like /model/parse; the text chooses a failure mode."""

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["text"]
        if self.path != "/model/parse" or text == "error":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"status": "failure"}')
            return
        if text == "slow":
            time.sleep(1.0)
        payload = (
            b"not json"
            if text == "garbage"
            else json.dumps(
                {
                    "text": text,
                    "intent": {"id": -1, "name": "remote_intent", "confidence": 0.77},
                    "entities": [{"entity": "plan", "start": 0, "end": 3, "value": "pro", "extractor": "X"}],
                    "intent_ranking": [{"id": -1, "name": "remote_intent", "confidence": 0.77}],
                    "response_selector": {"all_retrieval_intents": []},
                }
            ).encode()
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that timed out closed the socket: nothing to report."""


@pytest.fixture
def rasa_url() -> Iterator[str]:
    server = _QuietServer(("127.0.0.1", 0), _RasaHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_remote_answer_is_used(rasa_url: str, default_model: NLUModel) -> None:
    remote = RemoteRasaParser(rasa_url, fallback=default_model, timeout_s=2.0)
    result = remote.parse("pro please")
    assert result.intent.name == "remote_intent"
    assert result.entities[0].value == "pro"
    assert [r.intent.name for r in remote.parse_batch(["a", "b"])] == ["remote_intent"] * 2
    remote.close()


@pytest.mark.parametrize("text", ["error", "garbage", "slow"])
def test_failures_fall_back_to_the_local_engine(
    rasa_url: str, default_model: NLUModel, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    remote = RemoteRasaParser(rasa_url, fallback=default_model, timeout_s=0.3)
    with caplog.at_level(logging.WARNING, logger="nlu.remote"):
        result = remote.parse(text)
    assert result == default_model.parse(text)
    assert any("using the local engine" in r.getMessage() for r in caplog.records)
    remote.close()


def test_unreachable_server_falls_back(default_model: NLUModel) -> None:
    remote = RemoteRasaParser("http://127.0.0.1:9", fallback=default_model, timeout_s=0.5)
    assert remote.parse("hello").intent.name == "greet"
    remote.close()


async def test_aparse_remote_and_fallback(rasa_url: str, default_model: NLUModel) -> None:
    remote = RemoteRasaParser(rasa_url, fallback=default_model, timeout_s=0.3)
    assert (await remote.aparse("hi")).intent.name == "remote_intent"
    fallback, local = (await remote.aparse("slow")).intent, default_model.parse("slow").intent
    # The same model; the encoder's float32 sums may differ in the last bits between threads.
    assert fallback.name == local.name
    assert fallback.confidence == pytest.approx(local.confidence, abs=1e-5)
    remote.close()
