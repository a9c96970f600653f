"""Free text in Slack: the ask modal (a note about a vote, a draft's new text) and what its
submission becomes, against the fake Slack platform."""

from __future__ import annotations

from bot.adapters.slack import inbound as translate
from bot.adapters.slack.blocks import MAX_EDIT_CHARS, NOTE_ACTION, NOTE_BLOCK
from bot.texts import t
from bot.types import Action, Reply
from tests.bot.adapters import test_slack as wiring
from tests.bot.adapters.test_slack import ANA, CHANNEL, Slack
from tests.fakes.slack_api import validate_view

fake = wiring.fake
make_slack = wiring.make_slack
slack = wiring.slack


async def test_an_edit_ask_opens_a_prefilled_modal_whose_text_comes_back_as_an_edit(
    slack: Slack,
) -> None:
    draft = "Dear Dana,\n\nthe shipment is late."
    reply = Reply(
        "The new text of the email:",
        ask_comment=True,
        comment_task=5,
        ask_action=Action.edit,
        ask_prefill=draft,
        ask_title="Edit email #5",
    )

    await slack.adapter.open_ask(slack.fake.issue_trigger_id(), reply, CHANNEL)

    (view,) = slack.fake.opened_views
    assert validate_view(view) == []
    assert view["title"]["text"] == "Edit email #5"
    (field,) = [b["element"] for b in view["blocks"] if b["type"] == "input"]
    assert field["initial_value"] == draft and field["max_length"] == MAX_EDIT_CHARS
    submitted = slack.fake.view_submission(
        view, values={NOTE_BLOCK: {NOTE_ACTION: draft + " Sorry!"}}, user_id=ANA
    )
    event = translate.ask_event(submitted, submitted["view"])
    assert event is not None
    assert (event.action, event.task_id, event.channel) == (Action.edit, 5, CHANNEL)
    assert event.comment == draft + " Sorry!"


async def test_a_note_ask_keeps_its_default_title_and_comes_back_as_a_note(slack: Slack) -> None:
    reply = Reply("Why 👎? In your own words:", ask_comment=True, comment_task=9)

    await slack.adapter.open_ask(slack.fake.issue_trigger_id(), reply, CHANNEL)

    (view,) = slack.fake.opened_views
    assert view["title"]["text"] == t("why.modal_title", "en")
    (field,) = [b["element"] for b in view["blocks"] if b["type"] == "input"]
    assert "initial_value" not in field
    submitted = slack.fake.view_submission(view, values={NOTE_BLOCK: {NOTE_ACTION: "too long"}})
    event = translate.ask_event(submitted, submitted["view"])
    assert event is not None and (event.action, event.comment) == (Action.note, "too long")
    assert event.event_id.startswith("note:")


def test_an_ask_about_anything_but_a_note_or_an_edit_is_ignored() -> None:
    view = {
        "private_metadata": translate.ask_metadata(task_id=1, channel=CHANNEL, action=Action.cancel)
    }
    assert translate.ask_event({"user": {"id": ANA}}, view) is None
    assert translate.ask_event({"user": {"id": ANA}}, {"private_metadata": "{"}) is None
