"""Block Kit for atombot's Slack messages and Home tab, built with ``slack_sdk.models.blocks``.

The models validate Slack's limits when serialised (section text ≤ 3,000, button text ≤ 75,
value ≤ 2,000, ids ≤ 255, ≤ 25 elements per actions block); this module keeps every message
within 50 blocks and every Home tab within 100 by splitting and, if need be, merging.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextActionsBlock,
    ContextBlock,
    DividerBlock,
    FeedbackButtonObject,
    FeedbackButtonsElement,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View as ModalView

from bot.render import split_text
from bot.types import Action, Button, View

MAX_MESSAGE_BLOCKS = 50
MAX_HOME_BLOCKS = 100
MAX_SECTION_TEXT = 3_000
MAX_HEADER_TEXT = 150
MAX_FALLBACK_TEXT = 4_000
#: Names listed in a "👍 by …" line before the rest are counted.
MAX_VOTER_NAMES = 10
#: The modal that takes a person's own words (a note about their 👎, a draft's new text):
#: its view_submission callback.
NOTE_CALLBACK = "ab-note"
ASK_CALLBACK = NOTE_CALLBACK
NOTE_BLOCK = "note"
NOTE_ACTION = "note_text"
#: Modal titles and submit labels: at most 24 characters.
MAX_VIEW_TITLE = 24
MAX_NOTE_CHARS = 2_000
#: Slack's limit on a plain-text input (a draft edited in a modal).
MAX_EDIT_CHARS = 3_000

Votes = Mapping[int, Sequence[tuple[str, int]]]


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn_chunks(text: str, limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Escape ``text`` and split it into pieces that each fit a section block."""
    pieces: list[str] = []
    for raw in split_text(text, limit):
        escaped = escape(raw)
        if len(escaped) <= limit:
            pieces.append(escaped)
        else:
            # Escaping grew the piece past the limit: split the raw text finer.
            pieces.extend(mrkdwn_chunks(raw, limit // 2) if limit > 100 else [escaped[:limit]])
    return [p for p in pieces if p.strip()]


def fallback_text(view: View) -> str:
    """The message's plain ``text`` (notifications, screen readers); the blocks hold it all."""
    text = view.text or " "
    return text if len(text) <= MAX_FALLBACK_TEXT else split_text(text, MAX_FALLBACK_TEXT - 1)[0]


def _button(button: Button) -> ButtonElement:
    style = "primary" if button.action == Action.regenerate else None
    style = "danger" if button.action == Action.cancel else style
    return ButtonElement(
        text=button.label[:75], action_id=button.data, value=button.data, style=style
    )


def votes_line(votes: Sequence[tuple[str, int]], by: str) -> str | None:
    """ "👍 by <@U1>, <@U2> · 👎 by <@U3>" (``by`` is the "{emoji} by {user}" template)."""
    parts: list[str] = []
    for emoji, score in (("👍", 1), ("👎", -1)):
        users = [user for user, value in votes if value == score]
        if not users:
            continue
        names = ", ".join(f"<@{u}>" for u in users[:MAX_VOTER_NAMES])
        if len(users) > MAX_VOTER_NAMES:
            names += f" +{len(users) - MAX_VOTER_NAMES}"
        parts.append(by.format(emoji=emoji, user=names))
    return " · ".join(parts) or None


def _section_blocks(view: View) -> list[Block]:
    blocks: list[Block] = []
    for section in view.sections:
        title = f"*{escape(section.title)}*" if section.title else ""
        body = mrkdwn_chunks(section.text) if section.text else []
        if title and body and len(title) + 1 + len(body[0]) <= MAX_SECTION_TEXT:
            body[0] = f"{title}\n{body[0]}"
        elif title:
            body.insert(0, title)
        blocks.extend(SectionBlock(text=MarkdownTextObject(text=piece)) for piece in body)
    return blocks


def feedback_action_id(task_id: int) -> str:
    """The ``action_id`` of a result's native 👍/👎 pair (each side's ``value`` is its data)."""
    return f"ab:fb:{task_id}"


def _feedback_block(task_id: int, index: int, up: Button, down: Button) -> Block:
    """Slack's native 👍/👎 (a ``feedback_buttons`` element in a ``context_actions`` block)."""
    return ContextActionsBlock(
        block_id=f"fb:{task_id}:{index}",
        elements=[
            FeedbackButtonsElement(
                action_id=feedback_action_id(task_id),
                positive_button=FeedbackButtonObject(text=up.label[:75], value=up.data),
                negative_button=FeedbackButtonObject(text=down.label[:75], value=down.data),
            )
        ],
    )


def _button_blocks(
    view: View, votes: Votes, by: str, *, native_feedback: bool = False
) -> list[Block]:
    blocks: list[Block] = []
    several = len(view.buttons) > 1
    for index, row in enumerate(view.buttons):
        if not row:
            continue
        task_id = row[0].task_id
        line = votes_line(votes.get(task_id, ()), by)
        label = " · ".join(x for x in (f"#{task_id}" if several else "", line or "") if x)
        if label:
            blocks.append(
                ContextBlock(
                    block_id=f"votes:{task_id}:{index}",
                    elements=[MarkdownTextObject(text=label)],
                )
            )
        up = next((b for b in row if b.action == Action.rate_up), None)
        down = next((b for b in row if b.action == Action.rate_down), None)
        if native_feedback and up is not None and down is not None:
            blocks.append(_feedback_block(task_id, index, up, down))
            row = tuple(b for b in row if b not in (up, down))
        if row:
            blocks.append(
                ActionsBlock(
                    block_id=f"act:{task_id}:{index}", elements=[_button(b) for b in row[:25]]
                )
            )
    return blocks


def message_blocks(
    view: View,
    *,
    votes: Votes | None = None,
    by: str = "{emoji} by {user}",
    native_feedback: bool = False,
) -> list[dict[str, Any]]:
    """The blocks of a progress/result message: sections, then a button row per task.

    ``native_feedback``: 👍/👎 as Slack's feedback buttons (results that were streamed),
    the other buttons of the row (Regenerate, Cancel, …) as usual.
    """
    sections = _section_blocks(view)
    buttons = _button_blocks(view, votes or {}, by, native_feedback=native_feedback)
    if len(sections) + len(buttons) > MAX_MESSAGE_BLOCKS:
        # Too many tasks for one section each: merge the text, keep every button row we can.
        buttons = buttons[: MAX_MESSAGE_BLOCKS - 2]
        merged = mrkdwn_chunks(view.text)
        sections = [
            SectionBlock(text=MarkdownTextObject(text=piece))
            for piece in merged[: MAX_MESSAGE_BLOCKS - len(buttons)]
        ]
    return [block.to_dict() for block in [*sections, *buttons]]


def menu_blocks(text: str, rows: Sequence[Sequence[Button]]) -> list[dict[str, Any]]:
    """An answer with choices (the "why 👎?" menu): its text, then one actions block per row."""
    sections: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=piece)) for piece in mrkdwn_chunks(text)
    ]
    actions: list[Block] = [
        ActionsBlock(block_id=f"menu:{index}", elements=[_button(b) for b in row[:25]])
        for index, row in enumerate(rows)
        if row
    ]
    actions = actions[: MAX_MESSAGE_BLOCKS - 1]
    kept = sections[: MAX_MESSAGE_BLOCKS - len(actions)]
    return [block.to_dict() for block in [*kept, *actions]]


def note_modal(
    *,
    title: str,
    submit: str,
    label: str,
    placeholder: str,
    metadata: str,
    initial_value: str | None = None,
    max_chars: int = MAX_NOTE_CHARS,
) -> dict[str, Any]:
    """The modal asking for a person's own words (``metadata``: what the text answers;
    ``initial_value``: the text to start from, e.g. the draft being edited)."""
    view = ModalView(
        type="modal",
        callback_id=NOTE_CALLBACK,
        title=PlainTextObject(text=title[:MAX_VIEW_TITLE]),
        submit=PlainTextObject(text=submit[:MAX_VIEW_TITLE]),
        private_metadata=metadata,
        blocks=[
            InputBlock(
                block_id=NOTE_BLOCK,
                label=PlainTextObject(text=label[:2_000]),
                element=PlainTextInputElement(
                    action_id=NOTE_ACTION,
                    multiline=True,
                    max_length=max_chars,
                    initial_value=initial_value[:max_chars] if initial_value else None,
                    placeholder=PlainTextObject(text=placeholder[:150]),
                ),
            )
        ],
    )
    return view.to_dict()


def note_of(view: Mapping[str, Any]) -> str:
    """The text typed into :func:`note_modal`, from a view_submission's ``view``."""
    values = ((view.get("state") or {}).get("values") or {}).get(NOTE_BLOCK) or {}
    field = values.get(NOTE_ACTION) or {}
    return str(field.get("value") or "")


def home_view(
    *,
    title: str,
    tasks_header: str,
    task_lines: Sequence[str],
    empty_tasks: str,
    digests_header: str,
    digest_lines: Sequence[str],
    empty_digests: str,
) -> dict[str, Any]:
    """The Home tab: the user's recent tasks, then their digest subscriptions."""
    blocks: list[Block] = [HeaderBlock(text=title[:MAX_HEADER_TEXT])]
    blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*{escape(tasks_header)}*")))
    for line in task_lines or [empty_tasks]:
        blocks.extend(
            SectionBlock(text=MarkdownTextObject(text=piece)) for piece in mrkdwn_chunks(line)[:1]
        )
    blocks.append(DividerBlock())
    blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*{escape(digests_header)}*")))
    for line in digest_lines or [empty_digests]:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=line[:MAX_SECTION_TEXT])))
    return {"type": "home", "blocks": [b.to_dict() for b in blocks[:MAX_HOME_BLOCKS]]}
