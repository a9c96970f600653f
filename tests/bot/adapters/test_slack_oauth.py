"""Many Slack workspaces: atombot installed by OAuth in two workspaces of the fake Slack,
through the adapter's real install link and redirect (bolt's AsyncOAuthFlow, state cookie
and parameter, ``oauth.v2.access``), with slack_sdk's SQLAlchemy stores on atombot's own
database. Each workspace's requests, results, buttons, Home tab, summaries and digests
stay in that workspace, made with its own token; an uninstall removes one workspace alone.

The classifier is scripted (the subject here is routing between workspaces, not reading
requests) and the "model" is the fake OpenAI-compatible server: no torch in this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import MetaData, Table
from sqlmodel import SQLModel

from bot.adapters.base import Services
from bot.adapters.slack import SlackAdapter
from bot.adapters.slack.manifest import BOT_SCOPES
from bot.app import App, build_app
from bot.config import Settings
from bot.doctor import Doctor
from bot.texts import t
from bot.types import Action, Button
from models.generation.openai import OpenAIGenerator
from models.intents.spec import TaskSpec
from storage.tables import Task, TaskStatus
from tests.fakes.openai_api import FakeOpenAI, fixed_reply, serve_openai
from tests.fakes.slack_api import FakeSlack, SignedRequest

ALPHA, BRAVO = "T0ALPHA", "T0BRAVO"
CHANNEL = {ALPHA: "C0ALPHA", BRAVO: "C0BRAVO"}
USER = {ALPHA: "U0ANA", BRAVO: "U0BOB"}
#: What each workspace's channel holds: must never reach the other workspace.
SECRET = {ALPHA: "alpha-merger-codename", BRAVO: "bravo-layoff-list"}
OTHER = {ALPHA: BRAVO, BRAVO: ALPHA}
OUTBOUND = ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream")


class ScriptedParser:
    """Reads the few requests these tests make: ``draft …``, ``status N``, ``cancel N``,
    ``summarize <#C…>``, ``digest <#C…>``."""

    def parse(
        self, text: str, *, now_iso: str | None = None, timezone: str = "UTC", traits: Any = None
    ) -> list[TaskSpec]:
        word, _, rest = text.strip().partition(" ")
        if word == "draft":
            return [TaskSpec("email.draft", {"recipients": ["Dana"], "topic": rest})]
        if word in ("status", "cancel"):
            return [TaskSpec(f"task.{word}", {"task_ids": [int(rest)]})]
        if word == "summarize":
            return [TaskSpec("summarize", {"scope": "channel", "channel": rest})]
        if word == "digest":
            return [TaskSpec("digest.subscribe", {"channel": rest})]
        return [TaskSpec("help")]


@dataclass
class Workspaces:
    """The bot serving two workspaces of one fake Slack."""

    app: App
    adapter: SlackAdapter
    fake: FakeSlack
    model: FakeOpenAI

    @property
    def base(self) -> str:
        return self.adapter.url.removesuffix(self.adapter.path)

    async def post(self, request: SignedRequest) -> int:
        response = await self.fake.post_to_app(self.adapter.url, request)
        await asyncio.wait_for(self.adapter.wait_idle(), 30)
        return response.status

    async def command(self, team: str, text: str) -> str:
        """``/atom text`` by the team's user in its channel; the answer it got."""
        before = len(self.fake.response_url_posts)
        form = self.fake.slash_command_payload(
            text, user_id=USER[team], channel_id=CHANNEL[team], team_id=team
        )
        assert await self.post(self.fake.signed_form(form)) == 200
        posts = self.fake.response_url_posts[before:]
        return "\n".join(str(p.body.get("text")) for p in posts)

    async def mention(self, team: str, text: str) -> None:
        event = self.fake.app_mention(
            text, user_id=USER[team], channel_id=CHANNEL[team], team_id=team
        )
        assert await self.post(self.fake.signed_event(event, team_id=team)) == 200

    async def finish(self) -> None:
        """Show the progress (a stream opens in a thread), generate every queued task, then
        deliver until nothing is left to show."""
        assert self.app.worker is not None
        await self.app.jobs.deliverer.tick()
        await self.app.worker.run_until_idle()
        for _ in range(3):
            await self.app.jobs.deliverer.tick()

    async def tasks(self, team: str) -> list[Task]:
        found = await self.app.repo.list_tasks(platform="slack", limit=100)
        return sorted((x for x in found if x.tenant == team), key=lambda x: x.id or 0)

    def calls_in(self, channel: str) -> list[Any]:
        return [
            c for c in self.fake.calls if c.method in OUTBOUND and c.args.get("channel") == channel
        ]


async def install(bot: Workspaces, team: str) -> aiohttp.ClientResponse:
    """A workspace admin opens the install link, approves on Slack's page, and comes back
    to the redirect with the browser's state cookie; returns the redirect's answer."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as browser:
        link = f"{bot.base}{bot.adapter.settings.slack_install_path}"
        async with browser.get(link, params={"team": team}, allow_redirects=False) as started:
            assert started.status == 302
            consent = started.headers["Location"]
            cookie = started.headers["Set-Cookie"].split(";", 1)[0]
        async with browser.get(consent, allow_redirects=False) as approved:
            assert approved.status == 302
            back = approved.headers["Location"]
        async with browser.get(back, headers={"Cookie": cookie}, allow_redirects=False) as done:
            await done.read()
            return done


@pytest.fixture
async def make_workspaces(
    settings: Settings,
) -> AsyncIterator[Callable[..., Awaitable[Workspaces]]]:
    """Build the bot in many-workspace mode on demand (both workspaces installed unless
    ``installed`` says otherwise); the worker and delivery job are driven by the tests."""
    stops: list[Callable[[], Awaitable[None]]] = []

    async def make(*, installed: tuple[str, ...] = (ALPHA, BRAVO), **overrides: Any) -> Workspaces:
        fake = FakeSlack()
        await fake.start()
        stops.append(fake.stop)
        for team in (ALPHA, BRAVO):
            fake.add_team(team)
            fake.add_channel(CHANNEL[team], team_id=team)
            fake.add_user(USER[team], team_id=team)
            fake.seed_message(CHANNEL[team], f"the plan: {SECRET[team]}", user=USER[team])
        serving = serve_openai(fixed_reply("Draft ", "ready."))
        model = await serving.__aenter__()
        stops.append(lambda: serving.__aexit__(None, None, None))
        config = settings.model_copy(
            update={
                "slack_client_id": fake.client_id,
                "slack_client_secret": fake.client_secret,
                "slack_signing_secret": fake.signing_secret,
                "slack_api_url": fake.api_url,
                **overrides,
            }
        )
        adapter = SlackAdapter(config, host="127.0.0.1", port=0, min_edit_interval=0.0)
        app = await build_app(
            config,
            parser=ScriptedParser(),
            generator=OpenAIGenerator(model.base_url, model="tiny"),
            adapters=[adapter],
        )
        stops.append(app.stop)
        await adapter.start(Services(router=app.router, repo=app.repo, notify=app.notify))
        bot = Workspaces(app, adapter, fake, model)
        fake.redirect_url = f"{bot.base}{config.slack_redirect_uri_path}"
        for team in installed:
            assert (await install(bot, team)).status == 200
        return bot

    yield make
    for stop in reversed(stops):
        await stop()


# --- installing -----------------------------------------------------------------------------


async def test_two_workspaces_install_through_the_oauth_redirect_each_with_its_own_token(
    make_workspaces: Callable[..., Awaitable[Workspaces]],
) -> None:
    bot = await make_workspaces(installed=())
    store = bot.adapter.installation_store
    assert store is not None

    for team in (ALPHA, BRAVO):
        assert (await install(bot, team)).status == 200

    for team in (ALPHA, BRAVO):
        found = await store.async_find_bot(enterprise_id=None, team_id=team)
        (token,) = bot.fake.live_tokens(team)
        assert found is not None and found.bot_token == token
        assert found.bot_user_id == bot.fake.bot_user_of(team)
        (asked,) = bot.fake.teams[team].scopes
        assert asked.split(",") == list(BOT_SCOPES)
    exchanges = bot.fake.calls_to("oauth.v2.access")
    assert [c.ok for c in exchanges] == [True, True]
    audited = await bot.app.repo.audit_entries(action="slack.install")
    assert sorted(e.tenant or "" for e in audited) == [ALPHA, BRAVO]


async def test_a_redirect_without_the_browsers_state_cookie_or_a_used_state_installs_nothing(
    make_workspaces: Callable[..., Awaitable[Workspaces]],
) -> None:
    bot = await make_workspaces(installed=())
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as browser:
        link = f"{bot.base}/slack/install?team={ALPHA}"
        async with browser.get(link, allow_redirects=False) as started:
            consent = started.headers["Location"]
            cookie = started.headers["Set-Cookie"].split(";", 1)[0]
        state = parse_qs(urlsplit(consent).query)["state"][0]
        async with browser.get(consent, allow_redirects=False) as approved:
            back = approved.headers["Location"]
        async with browser.get(back, allow_redirects=False) as no_cookie:
            assert no_cookie.status >= 400
        async with browser.get(back, headers={"Cookie": cookie}, allow_redirects=False) as ok:
            assert ok.status == 200
        # The same state again (a replayed redirect, even with the cookie): refused.
        async with browser.get(back, headers={"Cookie": cookie}, allow_redirects=False) as again:
            assert again.status >= 400
    assert state in back
    assert [c.ok for c in bot.fake.calls_to("oauth.v2.access")] == [True]


# --- each workspace on its own token --------------------------------------------------------


async def test_each_workspaces_results_are_posted_and_streamed_with_its_own_token(
    make_workspaces: Callable[..., Awaitable[Workspaces]],
) -> None:
    bot = await make_workspaces()

    for team in (ALPHA, BRAVO):
        await bot.command(team, "draft the quarterly update")
        await bot.mention(team, "draft the offsite agenda")
    await bot.finish()

    for team in (ALPHA, BRAVO):
        tasks = await bot.tasks(team)
        assert [x.status for x in tasks] == [TaskStatus.succeeded] * 2
        calls = bot.calls_in(CHANNEL[team])
        assert {c.method for c in calls} >= {"chat.postMessage", "chat.startStream"}
        assert {c.token for c in calls} == set(bot.fake.live_tokens(team))
        assert all(c.ok for c in calls), [(c.method, c.error) for c in calls]
        streamed = [c for c in calls if c.method == "chat.startStream"]
        assert {c.args["recipient_team_id"] for c in streamed} == {team}
    assert bot.fake.calls_to("chat.postMessage", ok=False) == []


@pytest.mark.parametrize("owner", [ALPHA, BRAVO])
async def test_nothing_of_one_workspace_crosses_into_the_other(
    make_workspaces: Callable[..., Awaitable[Workspaces]], owner: str
) -> None:
    bot = await make_workspaces()
    other = OTHER[owner]
    await bot.command(owner, "draft the board memo")
    # The other workspace's user has a result of their own, with buttons to forge from.
    await bot.command(other, "draft a thank-you note")
    await bot.finish()
    (their,) = await bot.tasks(other)
    their_message = [m for m in bot.fake.bot_messages(CHANNEL[other]) if m.blocks][-1]
    await bot.command(owner, "draft the press release")  # stays queued for now
    done, queued = await bot.tasks(owner)
    seen_by_other: list[str] = []

    # status and cancel of the owner's tasks, asked from the other workspace
    seen_by_other.append(await bot.command(other, f"status {done.id}"))
    seen_by_other.append(await bot.command(other, f"cancel {queued.id}"))
    assert t("status.none", "en") in seen_by_other[0]
    assert t("cancel.not_found", "en", id=queued.id) in seen_by_other[1]
    assert (await bot.app.repo.get_task(queued.id or 0)).status == TaskStatus.queued

    # 👍 and Regenerate pressed on the owner's task (a forged button value): not found
    for action in (Action.rate_up, Action.regenerate):
        before = len(bot.fake.response_url_posts)
        forged = Button("", action, done.id or 0).data
        press = bot.fake.block_actions(
            channel_id=CHANNEL[other],
            message_ts=their_message.ts,
            action_id=Button("", action, their.id or 0).data,
            value=forged,
            user_id=USER[other],
            team_id=other,
        )
        assert await bot.post(bot.fake.signed_interaction(press)) == 200
        (answer,) = bot.fake.response_url_posts[before:]
        assert answer.body["text"] == t("rate.not_found", "en", id=done.id)

    # the App Home of the other workspace's user
    opened = bot.fake.app_home_opened(user_id=USER[other])
    assert await bot.post(bot.fake.signed_event(opened, team_id=other)) == 200

    # a summary and a digest of the owner's channel, asked from the other workspace
    seen_by_other.append(await bot.command(other, f"summarize <#{CHANNEL[owner]}>"))
    seen_by_other.append(await bot.command(other, f"digest <#{CHANNEL[owner]}>"))
    await bot.finish()
    (subscription,) = await bot.app.repo.list_digests()
    assert (subscription.tenant, subscription.channel) == (other, CHANNEL[owner])
    await bot.app.jobs.run_digest(subscription.id or 0, force=True)

    # Nothing of the owner's changed or was shown to the other workspace.
    assert [x.id for x in await bot.tasks(owner)] == [done.id, queued.id]  # no new attempt
    tally = (await bot.app.repo.tallies([done.id or 0])).get(done.id or 0)
    assert tally is None or (tally.up, tally.down) == (0, 0)
    home = bot.fake.home_views[USER[other]]
    home_text = str(home)
    assert f"#{done.id}" not in home_text and f"#{queued.id}" not in home_text
    assert f"#{their.id}" in home_text
    assert SECRET[owner] not in bot.model.sent_text()
    other_tokens = set(bot.fake.live_tokens(other))
    for call in bot.fake.calls:
        if call.token in other_tokens:
            assert SECRET[owner] not in str(call.response)
            assert SECRET[owner] not in str(call.args)
    for ephemeral in bot.fake.ephemerals:
        if ephemeral.user == USER[other]:
            assert SECRET[owner] not in ephemeral.text
    assert all(SECRET[owner] not in answer for answer in seen_by_other)
    # The owner's channel was never written to with the other workspace's token, and
    # the other workspace's reads of it were refused by Slack for that token.
    for call in bot.calls_in(CHANNEL[owner]):
        assert call.token not in other_tokens or call.error == "channel_not_found"
    reads = [
        c
        for c in bot.fake.calls_to("conversations.history")
        if c.args.get("channel") == CHANNEL[owner]
    ]
    assert reads and {c.token for c in reads} <= other_tokens
    assert {c.error for c in reads} == {"channel_not_found"}
    assert not [m for m in bot.fake.bot_messages(CHANNEL[owner]) if "Digest" in m.text]


# --- uninstalling ---------------------------------------------------------------------------


async def test_an_uninstall_revokes_that_workspace_alone_keeps_its_data_and_is_audited(
    make_workspaces: Callable[..., Awaitable[Workspaces]],
) -> None:
    bot = await make_workspaces()
    for team in (ALPHA, BRAVO):
        await bot.command(team, "draft the roadmap")
    await bot.finish()
    store = bot.adapter.installation_store
    assert store is not None

    # Slack sends both events for one uninstall.
    revoked = bot.fake.tokens_revoked(ALPHA)
    assert await bot.post(bot.fake.signed_event(revoked, team_id=ALPHA)) == 200
    removed = bot.fake.uninstall(ALPHA)
    assert await bot.post(bot.fake.signed_event(removed, team_id=ALPHA)) == 200

    assert await store.async_find_bot(enterprise_id=None, team_id=ALPHA) is None
    assert await store.async_find_bot(enterprise_id=None, team_id=BRAVO) is not None
    (entry,) = await bot.app.repo.audit_entries(action="slack.uninstall")
    assert (entry.tenant, entry.platform, entry.actor) == (ALPHA, "slack", "slack")
    assert entry.detail["purged"] is False and entry.detail["event"] == "tokens_revoked"
    assert len(await bot.tasks(ALPHA)) == 1  # kept (ATOMBOT_UNINSTALL_PURGE is off)

    # The removed workspace is no longer served; the other one is, with its token.
    answer = await bot.command(ALPHA, "draft the retro notes")
    assert t("slack.not_installed", "en") in answer
    assert len(await bot.tasks(ALPHA)) == 1
    await bot.command(BRAVO, "draft the retro notes")
    await bot.finish()
    assert [x.status for x in await bot.tasks(BRAVO)] == [TaskStatus.succeeded] * 2
    assert {c.token for c in bot.calls_in(CHANNEL[BRAVO])} == set(bot.fake.live_tokens(BRAVO))


async def test_an_uninstall_with_purging_deletes_that_workspaces_data_only(
    make_workspaces: Callable[..., Awaitable[Workspaces]],
) -> None:
    bot = await make_workspaces(uninstall_purge=True)
    for team in (ALPHA, BRAVO):
        await bot.command(team, "draft the roadmap")
        await bot.command(team, f"digest <#{CHANNEL[team]}>")
    await bot.finish()

    removed = bot.fake.uninstall(ALPHA)
    assert await bot.post(bot.fake.signed_event(removed, team_id=ALPHA)) == 200

    assert await bot.tasks(ALPHA) == []
    assert len(await bot.tasks(BRAVO)) == 1
    assert [d.tenant for d in await bot.app.repo.list_digests()] == [BRAVO]
    (entry,) = await bot.app.repo.audit_entries(action="slack.uninstall")
    assert entry.tenant == ALPHA and entry.detail["purged"] is True
    assert entry.detail["counts"]["task"] == 1 and entry.detail["counts"]["request"] == 2
    assert [e.tenant for e in await bot.app.repo.audit_entries(action="slack.install")] == [
        ALPHA,
        BRAVO,
    ]  # the audit log itself is kept


# --- the stores' tables ---------------------------------------------------------------------


def _shape(table: Table) -> tuple[Any, ...]:
    columns = tuple(
        (c.name, repr(c.type), c.nullable, c.primary_key, c.default is not None)
        for c in table.columns
    )
    indexes = sorted((i.name, tuple(c.name for c in i.columns)) for i in table.indexes)
    return columns, indexes


def test_the_migrated_slack_tables_are_those_slack_sdk_defines() -> None:
    theirs = MetaData()
    expected = [
        SQLAlchemyInstallationStore.build_installations_table(theirs, "slack_installations"),
        SQLAlchemyInstallationStore.build_bots_table(theirs, "slack_bots"),
        SQLAlchemyOAuthStateStore.build_oauth_states_table(theirs, "slack_oauth_states"),
    ]
    for table in expected:
        assert _shape(SQLModel.metadata.tables[table.name]) == _shape(table)


async def test_doctor_checks_oauth_installs_for_http_mode_and_the_signing_secret(
    settings: Settings,
) -> None:
    oauth = settings.model_copy(
        update={"slack_client_id": "1.2", "slack_client_secret": "s", "slack_signing_secret": "x"}
    )
    served = await Doctor(oauth).slack()
    socket = await Doctor(oauth.model_copy(update={"slack_app_token": "xapp-1"})).slack()

    assert [(f.check, f.status) for f in served] == [
        ("slack.oauth", "ok"),
        ("slack.signing_secret", "ok"),
    ]
    assert "/slack/install" in served[0].message
    assert [(f.check, f.status) for f in socket] == [("slack.oauth", "fail")]
    assert socket[0].fix is not None and "SLACK_APP_TOKEN" in socket[0].fix
