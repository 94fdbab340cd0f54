"""The campaign page shows a broadcast's experiment: arms, intervals, the test and the decision."""

from __future__ import annotations

from datetime import timedelta

from scheduler import create_broadcast
from scheduler.experiments import ExperimentDraft, VariantDraft, create_experiment_broadcast
from store.experiments import VariantButton
from tests.dashboard.conftest import Dash, seed_users


def test_campaign_page_shows_its_experiment_and_a_plain_one_does_not(dash: Dash) -> None:
    seed_users(dash.engine, n=30, now=dash.clock.now)
    draft = ExperimentDraft(
        (VariantDraft("Hello A"), VariantDraft("Hello B", (VariantButton("Docs", url="https://x.example"),))),
        control_share=0.2,
        test_share=0.5,
        pick_winner_after=timedelta(hours=6),
    )
    campaign_id, experiment_id = create_experiment_broadcast(
        dash.engine, segment="all", draft=draft, at=dash.clock.now, now=dash.clock.now, holdout_share=0.0
    )
    plain = create_broadcast(dash.engine, segment="all", text="Plain", at=dash.clock.now, now=dash.clock.now)
    client = dash.logged_in()
    page = client.get(f"/campaigns/{campaign_id}")
    assert page.status_code == 200
    html = page.text
    assert f"Experiment #{experiment_id}" in html and "50% tested first" in html
    assert "<td>A <span" in html and "<td>B <span" in html and "<td>control <span" in html
    assert "URL buttons not trackable: Docs" in html
    assert "test phase: the winner is not picked yet" in html
    other = client.get(f"/campaigns/{plain}")
    assert other.status_code == 200 and "Experiment #" not in other.text
