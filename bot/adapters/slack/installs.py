"""Many Slack workspaces: atombot installed by OAuth (``SLACK_CLIENT_ID`` and
``SLACK_CLIENT_SECRET`` set, HTTP mode).

bolt's :class:`AsyncOAuthFlow` serves the install link (``SLACK_INSTALL_PATH``: a state is
issued, kept in the state store and in a cookie, and the browser is sent to Slack's consent
page) and the redirect (``SLACK_REDIRECT_URI_PATH``: the state parameter must match the
cookie and be unused, then ``oauth.v2.access`` turns the code into the workspace's bot
token). Installations and states live in atombot's own database, in slack_sdk's SQLAlchemy
stores (tables from migration 0006).

Every request bolt takes is authorized with its workspace's token (bolt's installation store
authorize, cached per token); a middleware makes the adapter's own Web API calls of that
request use the same workspace, and every outbound call of a ``Target`` uses the token of
``Target.tenant`` (:meth:`~bot.adapters.slack.core.SlackCore.workspace`). A workspace that
uninstalls atombot (``app_uninstalled``) or revokes its bot token (``tokens_revoked``) loses
its installation; its data is kept, or deleted with ``ATOMBOT_UNINSTALL_PURGE``, and the
audit log records either.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

from bot.adapters.slack.core import use_team
from bot.adapters.slack.inbound import PLATFORM
from bot.adapters.slack.manifest import bot_scopes
from bot.adapters.slack.stream import SlackStreams
from bot.texts import t
from bot.types import StreamUpdate, Target, View

log = logging.getLogger(__name__)

#: Seconds an install link's state stays valid (bolt's default).
STATE_SECONDS = 600
#: The audit log's actor for what Slack told atombot (installs name their installer).
SLACK_ACTOR = "slack"
INSTALL_ACTION = "slack.install"
UNINSTALL_ACTION = "slack.uninstall"
REVOKE_ACTION = "slack.tokens_revoked"

Tracked = Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]


def authorization_url(api_url: str) -> str:
    """Slack's consent page next to the Web API base URL (``https://slack.com/api/`` →
    ``https://slack.com/oauth/v2/authorize``), so a proxy or a fake serves both."""
    base = api_url.rstrip("/")
    base = base.removesuffix("/api")
    return f"{base}/oauth/v2/authorize"


def tenant_subject(team: str) -> str:
    """How the audit log names a workspace (as ``storage.repo.tenants`` does)."""
    return f"tenant:{PLATFORM}/{team}"


class _InstallFlow(AsyncOAuthFlow):
    """bolt's OAuth flow, telling the adapter about every installation it stored."""

    def __init__(
        self, *, on_installed: Callable[[Installation], Awaitable[None]], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._on_installed = on_installed

    async def store_installation(
        self, request: AsyncBoltRequest, installation: Installation
    ) -> None:
        """Save the installation (bolt), then let the adapter drop an older token."""
        await super().store_installation(request, installation)
        await self._on_installed(installation)


class SlackInstalls(SlackStreams):
    """OAuth installs, per-workspace tokens and uninstalls (see the module docstring)."""

    _removing: asyncio.Lock | None = None

    def oauth_options(self) -> dict[str, Any]:
        """bolt's ``AsyncApp`` arguments for many workspaces (empty with a single token)."""
        if not self.multi_workspace:
            return {}
        s = self.settings
        engine = self.services.repo.engine
        store = AsyncSQLAlchemyInstallationStore(
            client_id=str(s.slack_client_id), engine=engine, logger=log
        )
        self.installation_store = store
        oauth = AsyncOAuthSettings(
            client_id=s.slack_client_id,
            client_secret=s.slack_client_secret,
            scopes=list(bot_scopes(s)),
            redirect_uri=s.slack_redirect_uri,
            install_path=s.slack_install_path,
            install_page_rendering_enabled=False,
            redirect_uri_path=s.slack_redirect_uri_path,
            authorization_url=authorization_url(s.slack_api_url),
            installation_store=store,
            installation_store_bot_only=True,
            state_store=AsyncSQLAlchemyOAuthStateStore(
                expiration_seconds=STATE_SECONDS, engine=engine, logger=log
            ),
            state_expiration_seconds=STATE_SECONDS,
            logger=log,
        )
        flow = _InstallFlow(
            client=self.app_client, logger=log, settings=oauth, on_installed=self._installed
        )
        return {
            "oauth_flow": flow,
            "installation_store": store,
            # One auth.test per token, not per request; a removed installation is no longer
            # found in the store, so its requests are refused all the same.
            "authorize": AsyncInstallationStoreAuthorize(
                logger=log, installation_store=store, bot_only=True, cache_enabled=True
            ),
            "user_facing_authorize_error_message": "\n".join(
                t("slack.not_installed", locale) for locale in ("en", "zh")
            ),
        }

    def register_installs(self, app: AsyncApp, tracked: Tracked) -> None:
        """The workspace middleware (before every other listener) and the uninstall events."""
        app.use(self._in_workspace)
        app.event("app_uninstalled")(tracked(self._on_app_uninstalled))
        app.event("tokens_revoked")(tracked(self._on_tokens_revoked))

    async def _in_workspace(
        self, context: AsyncBoltContext, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        """Make the adapter's calls of this request (and of the listeners bolt starts for it)
        use the token bolt authorized it with: that of the request's workspace."""
        team = context.team_id
        if team and context.bot_token:
            self.remember_workspace(team, context.bot_token, context.bot_user_id)
        use_team(team)  # bolt starts the listeners after every middleware returned
        return await next()

    # ------------------------------------------------------------------ outbound streams

    async def stream_start(self, target: Target, update: StreamUpdate, *, client_id: str) -> str:
        """:meth:`SlackStreams.stream_start` with the token of the target's workspace."""
        async with self.workspace(target.tenant):
            return await super().stream_start(target, update, client_id=client_id)

    async def stream_append(self, target: Target, stream_id: str, update: StreamUpdate) -> None:
        """:meth:`SlackStreams.stream_append` with the token of the target's workspace."""
        async with self.workspace(target.tenant):
            await super().stream_append(target, stream_id, update)

    async def edit(self, target: Target, message_id: str, view: View) -> None:
        """The edit with everything it calls afterwards (the assistant pane's status) made
        with the token of the target's workspace."""
        async with self.workspace(target.tenant):
            await super().edit(target, message_id, view)

    async def stream_stop(
        self,
        target: Target,
        stream_id: str,
        view: View,
        *,
        client_id: str,
        rest: str | None = None,
    ) -> str:
        """:meth:`SlackStreams.stream_stop` with the token of the target's workspace."""
        async with self.workspace(target.tenant):
            return await super().stream_stop(
                target, stream_id, view, client_id=client_id, rest=rest
            )

    # ------------------------------------------------------------------ installs, removals

    async def _installed(self, installation: Installation) -> None:
        """A workspace installed atombot (again): its new token replaces a cached one."""
        team = str(installation.team_id or "")
        self.forget_workspace(team)
        await self.services.repo.audit(
            actor=str(installation.user_id or SLACK_ACTOR),
            action=INSTALL_ACTION,
            platform=PLATFORM,
            tenant=team,
            subject=tenant_subject(team),
            detail={"scopes": list(installation.bot_scopes or [])},
        )
        log.info("Slack: workspace %s installed atombot", team)

    async def _on_app_uninstalled(self, body: dict[str, Any], context: AsyncBoltContext) -> None:
        """``app_uninstalled``: the workspace removed atombot."""
        team = str(context.team_id or body.get("team_id") or "")
        await self.remove_workspace(team, context.enterprise_id, event="app_uninstalled")

    async def _on_tokens_revoked(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """``tokens_revoked``: without its bot token the workspace is removed as by an
        uninstall; revoked user tokens only drop those users' installation rows."""
        team = str(context.team_id or body.get("team_id") or "")
        tokens = event.get("tokens") or {}
        if tokens.get("bot"):
            await self.remove_workspace(team, context.enterprise_id, event="tokens_revoked")
            return
        users = [str(u) for u in tokens.get("oauth") or []]
        if self.installation_store is None or not users:
            return
        for user in users:
            await self.installation_store.async_delete_installation(
                enterprise_id=context.enterprise_id, team_id=team, user_id=user
            )
        await self.services.repo.audit(
            actor=SLACK_ACTOR,
            action=REVOKE_ACTION,
            platform=PLATFORM,
            tenant=team,
            subject=tenant_subject(team),
            detail={"users": len(users)},
        )

    async def remove_workspace(self, team: str, enterprise: str | None, *, event: str) -> bool:
        """Delete ``team``'s installation, then keep or purge its data
        (``ATOMBOT_UNINSTALL_PURGE``) and audit it; False when it was already removed (Slack
        sends ``tokens_revoked`` and ``app_uninstalled`` for one uninstall)."""
        store = self.installation_store
        if not team or store is None:
            return False
        if self._removing is None:
            self._removing = asyncio.Lock()
        async with self._removing:
            installed = await store.async_find_bot(enterprise_id=enterprise, team_id=team)
            if installed is None:
                self.forget_workspace(team)
                return False
            await store.async_delete_all(enterprise_id=enterprise, team_id=team)
            self.forget_workspace(team)
            purge = self.settings.uninstall_purge
            detail: dict[str, Any] = {"event": event, "purged": purge}
            repo = self.services.repo
            if purge:
                await repo.forget_tenant_data(
                    platform=PLATFORM,
                    tenant=team,
                    actor=SLACK_ACTOR,
                    action=UNINSTALL_ACTION,
                    detail=detail,
                )
            else:
                await repo.audit(
                    actor=SLACK_ACTOR,
                    action=UNINSTALL_ACTION,
                    platform=PLATFORM,
                    tenant=team,
                    subject=tenant_subject(team),
                    detail=detail,
                )
        log.info(
            "Slack: workspace %s removed atombot (%s); data %s",
            team,
            event,
            "purged" if purge else "kept",
        )
        return True
