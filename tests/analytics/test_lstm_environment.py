"""Importing the LSTM module leaves the environment alone; TensorFlow's log level is set on first use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )  # fmt: skip
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_importing_the_lstm_module_does_not_change_os_environ() -> None:
    result = _run(
        "import json, os, sys\n"
        "import analytics.sequence.base\n"  # its package imports scikit-learn, which sets KMP_* itself
        "before = dict(os.environ)\n"
        "import analytics.sequence.lstm\n"
        "print(json.dumps({'same': dict(os.environ) == before, 'tf': 'tensorflow' in sys.modules}))"
    )
    assert result == {"same": True, "tf": False}


def test_keras_import_sets_the_log_level_unless_the_operator_did() -> None:
    result = _run(
        "import json, os\n"
        "from analytics.sequence.lstm import _keras\n"
        "_keras()\n"
        "print(json.dumps({'level': os.environ.get('TF_CPP_MIN_LOG_LEVEL')}))"
    )
    assert result == {"level": "2"}
