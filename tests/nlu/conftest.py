"""Fixtures for the NLU tests: small training files and one default model per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu import NLUModel, TrainingConfig, load_training_data, train
from nlu.default import default_data_paths

CLINC_DIR = Path(__file__).resolve().parents[1] / "data" / "clinc150"

TOY_YAML = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi there
    - good morning
    - hey
- intent: pricing
  examples: |
    - how much is the [pro](plan) plan
    - what does [enterprise](plan) cost
    - price of the [professional]{"entity": "plan", "value": "pro"} plan
    - how much does it cost
- intent: weather
  examples: |
    - will it rain today
    - what is the weather like
    - is it sunny outside
    - weather forecast please
- synonym: enterprise
  examples: |
    - enterprise plan
- regex: date
  examples: |
    - \\d{4}-\\d{2}-\\d{2}
- lookup: model
  examples: |
    - rapport-mini
    - rapport-pro
"""


@pytest.fixture
def toy_file(tmp_path: Path) -> Path:
    """A small Rasa YAML file with three intents, entities, a synonym, a regex and a lookup table."""
    path = tmp_path / "toy.yml"
    path.write_text(TOY_YAML, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def default_model() -> NLUModel:
    """The model trained from the bundled English and Chinese data (under a second)."""
    return train(load_training_data(default_data_paths()), config=TrainingConfig(random_state=0))
