"""Association rules: hand-checked toy baskets, the Groceries reference, basket files and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analytics import (
    OUTCOMES,
    BasketFileError,
    RuleMiningError,
    encode_baskets,
    mine_basket_file,
    mine_rules,
    read_baskets,
)
from analytics.rules import rule_sentence
from cli.analytics import app

GROCERIES = Path(__file__).resolve().parents[1] / "data" / "groceries" / "groceries.csv"

TOY = [["milk", "bread"], ["milk", "bread", "eggs"], ["milk", "eggs"], ["bread"], ["milk", "bread"]]


def test_toy_rule_measures_match_hand_computation() -> None:
    rules = mine_rules(TOY, min_support=0.4, min_confidence=0.7, min_lift=0.0)
    by_pair = {(r.antecedents, r.consequents): r for r in rules}
    # milk in 4/5, bread in 4/5, both in 3/5: confidence 3/4, lift (3/5)/(4/5 * 4/5)
    rule = by_pair[(("milk",), ("bread",))]
    assert rule.support == pytest.approx(0.6)
    assert rule.confidence == pytest.approx(0.75)
    assert rule.lift == pytest.approx(0.9375)
    assert rule.leverage == pytest.approx(0.6 - 0.64)
    assert rule.conviction == pytest.approx((1 - 0.8) / (1 - 0.75))
    # eggs in 2/5, always with milk: confidence 1, lift 1/0.8
    assert by_pair[(("eggs",), ("milk",))].lift == pytest.approx(1.25)
    assert set(by_pair) == {(("milk",), ("bread",)), (("bread",), ("milk",)), (("eggs",), ("milk",))}
    lifted = mine_rules(TOY, min_support=0.4, min_confidence=0.7, min_lift=1.0)
    assert [(r.antecedents, r.consequents) for r in lifted] == [(("eggs",), ("milk",))]


def test_encoding_is_one_hot_with_sorted_columns() -> None:
    frame = encode_baskets([["b", "a", "a"], ["c"]])
    assert list(frame.columns) == ["a", "b", "c"]
    assert frame.to_numpy().tolist() == [[True, True, False], [False, False, True]]


def test_outcome_filter_keeps_rules_ending_in_an_outcome() -> None:
    baskets = [["intent:pricing", "returned_after_push"]] * 6 + [["intent:pricing", "intent:billing"]] * 2
    baskets += [["intent:billing"]] * 2
    rules = mine_rules(baskets, min_support=0.1, min_confidence=0.5, min_lift=0.0, outcomes=OUTCOMES)
    assert [r.consequents for r in rules] == [("returned_after_push",)]
    assert rules[0].sentence == (
        "Of users who asked about pricing, 75% also came back after a push "
        "(1.2× as likely as average; 60.0% of users)."
    )


def test_sentences_read_like_english() -> None:
    text = rule_sentence(["action:reaction", "segment:Power users"], ["churned_30d"], 0.5, 2.0, 0.1)
    assert text == (
        "Of users who reacted to messages and are in “Power users”, 50% also went silent for 30+ days "
        "(2.0× as likely as average; 10.0% of users)."
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_support": 0.0}, "min_support=0.0 must be in"),
        ({"min_confidence": 1.5}, "min_confidence=1.5 must be in"),
        ({"min_lift": -1.0}, "min_lift=-1.0"),
        ({"algorithm": "eclat"}, "'eclat' is not one of"),
    ],
)
def test_bad_thresholds_are_named(options: dict[str, object], message: str) -> None:
    with pytest.raises(RuleMiningError, match=message):
        mine_rules(TOY, **options)  # type: ignore[arg-type]


def test_a_support_nobody_reaches_gives_no_rules() -> None:
    assert mine_rules(TOY, min_support=0.99) == []
    assert mine_rules([], min_support=0.5) == []


def test_basket_files_are_read_and_bad_ones_named(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("milk, bread\n\nmilk,bread,eggs\n,\nmilk,eggs\nbread\nmilk,bread\n", encoding="utf-8")
    assert read_baskets(path)[:2] == [["milk", "bread"], ["milk", "bread", "eggs"]]
    assert len(mine_basket_file(path, min_support=0.4, min_confidence=0.7, min_lift=0.0)) == 3
    empty = tmp_path / "empty.csv"
    empty.write_text("\n , \n", encoding="utf-8")
    with pytest.raises(BasketFileError, match="has no baskets"):
        read_baskets(empty)
    with pytest.raises(BasketFileError, match="cannot read basket file"):
        read_baskets(tmp_path / "missing.csv")


@pytest.mark.skipif(not GROCERIES.exists(), reason=f"Groceries data set not found at {GROCERIES}")
def test_groceries_matches_arules() -> None:
    baskets = read_baskets(GROCERIES)
    assert len(baskets) == 9835
    rules = mine_rules(baskets, min_support=0.001, min_confidence=0.8, min_lift=0.0)
    assert len(rules) == 410
    best = rules[0]
    assert best.antecedents == ("liquor", "red/blush wine")
    assert best.consequents == ("bottled beer",)
    assert best.lift == pytest.approx(11.2353, abs=1e-4)


@pytest.mark.skipif(not GROCERIES.exists(), reason=f"Groceries data set not found at {GROCERIES}")
def test_apriori_and_fpgrowth_agree() -> None:
    baskets = read_baskets(GROCERIES)
    fast = mine_rules(baskets, min_support=0.005, min_confidence=0.5, algorithm="fpgrowth")
    slow = mine_rules(baskets, min_support=0.005, min_confidence=0.5, algorithm="apriori")
    assert len(fast) == 120
    assert {(r.antecedents, r.consequents) for r in fast} == {(r.antecedents, r.consequents) for r in slow}


def test_cli_rules_prints_json_and_fails_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("\n".join(",".join(b) for b in TOY), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(
        app, ["rules", "--baskets", str(path), "--min-support", "0.4", "--min-lift", "0", "--json"]
    )
    assert result.exit_code == 0, result.output
    rules = json.loads(result.stdout)
    assert {(tuple(r["antecedents"]), tuple(r["consequents"])) for r in rules} == {
        (("milk",), ("bread",)),
        (("bread",), ("milk",)),
        (("eggs",), ("milk",)),
        (("milk",), ("eggs",)),  # confidence 0.5 reaches the default minimum
    }
    bad = runner.invoke(app, ["rules", "--baskets", str(tmp_path / "nope.csv")])
    assert bad.exit_code == 1
    assert "cannot read basket file" in bad.output
