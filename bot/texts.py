"""Every user-visible string, in English (``en``) and Chinese (``zh``).

Call :func:`t` with a key and a locale; unknown locales fall back to English. Keys are
grouped by where they appear. Keep both locales in step: a test checks they have the same
keys and placeholders.
"""

from __future__ import annotations

import re
import string
from typing import Any

LOCALES = ("en", "zh")

EN: dict[str, str] = {
    # Kinds of tasks, as shown in receipts and progress.
    "kind.email.draft": "draft email",
    "kind.reply.draft": "draft reply",
    "kind.summarize": "summary",
    "kind.summarize.partial": "partial summary",
    "kind.reminder.create": "reminder",
    "kind.task.status": "status",
    "kind.task.cancel": "cancel",
    "kind.digest.subscribe": "digest subscription",
    "kind.digest.unsubscribe": "digest unsubscribe",
    "kind.digest.recap": "digest recap",
    "kind.help": "help",
    # Receipts.
    "ack.queued": "Queued {tasks}.",
    "ack.duplicate": "Already on it: {tasks}.",
    "ack.duplicate_empty": "I already answered that message.",
    "ack.task": "#{id} {kind}",
    "ack.and_answered": "{answer}",
    # Input problems.
    "input.empty": "Send me a request, for example: “draft an email to Dana about the delayed shipment” or “summarize this thread”. Type help to see everything I can do.",
    "input.too_long": "That message is {length} characters long; I can take up to {limit}. Send a shorter request, or paste the text in parts.",
    "input.unreadable": "I couldn't read that message (it has no readable text). Please send it as plain text.",
    "input.oos": "Sorry, that's not something I can do. I can draft emails and replies, summarize threads, channels or text, set reminders, send daily digests and report on tasks. Type help for examples.",
    "input.ask.recipients": "Who should the email go to? For example: “draft an email to Dana about …”.",
    "input.ask.when": "When should I remind you? For example: “remind me tomorrow at 9 to send the report”.",
    "input.ask.generic": "I need a bit more detail: {missing}.",
    "help": (
        "I turn requests into small tasks and work on them:\n"
        "• draft an email to Dana about the delayed shipment\n"
        "• draft a reply to this message\n"
        "• summarize this thread / summarize #sales since yesterday\n"
        "• remind me tomorrow at 9 to send the report\n"
        "• send a daily digest of this channel at 8am\n"
        "• status (or status #42) · cancel #42\n"
        "You can ask for several things at once: “summarize this thread and email Dana the outcome”. "
        "Rate each result with 👍 or 👎 so I get better."
    ),
    # Progress and results.
    "status.queued": "⏳ #{id} {kind} — queued{position}",
    "status.queue_position": " (position {n})",
    "status.waiting": "⏳ #{id} {kind} — waiting for #{deps}",
    "status.running": "⚙️ #{id} {kind} — {bar} {percent}% · {elapsed}s",
    "status.retrying": "🔁 #{id} {kind} — retrying ({reason})",
    "status.succeeded": "✅ #{id} {kind}",
    "status.failed": "❌ #{id} {kind} failed: {reason}",
    "status.cancelled": "🚫 #{id} {kind} cancelled",
    "status.tally": "👍 {up} · 👎 {down}",
    "status.continued": "(continued {part}/{parts})",
    "status.none": "You have no tasks yet.",
    "status.header": "Your recent tasks:",
    "status.line": "#{id} {kind}: {status}",
    "state.queued": "queued",
    "state.running": "running",
    "state.succeeded": "done",
    "state.failed": "failed",
    "state.cancelled": "cancelled",
    # Failure reasons.
    "reason.worker_lost": "the worker stopped while working on it",
    "reason.model_unavailable": "the text model is not available ({detail})",
    "reason.generation_failed": "text generation failed ({detail})",
    "reason.dependency": "a task it depends on did not succeed",
    "reason.unknown": "{detail}",
    # Buttons.
    "button.up": "👍",
    "button.down": "👎",
    "button.regenerate": "Regenerate",
    "button.cancel": "Cancel",
    # Ratings and actions.
    "rate.recorded_up": "Thanks! 👍 recorded for #{id}.",
    "rate.recorded_down": "Thanks, 👎 recorded for #{id}. Press Regenerate for another attempt.",
    "rate.unchanged": "Your vote on #{id} was already recorded.",
    "rate.not_finished": "Task #{id} hasn't finished yet; rate it once the result is there.",
    "rate.not_found": "There is no task #{id} here.",
    "rate.usage": "Usage: /rate ID up|down",
    "rate.by": "{emoji} by {user}",
    "cancel.done": "Cancelled #{id}.",
    "cancel.already_finished": "Task #{id} has already finished ({status}).",
    "cancel.not_found": "There is no task #{id} of yours here.",
    "cancel.none_active": "You have no running or queued tasks to cancel.",
    "regenerate.queued": "Regenerating #{id} as #{new_id}.",
    "regenerate.not_possible": "Task #{id} can't be regenerated.",
    "followup.no_result": "There is no earlier result here for the {kind} to work on. Ask for the draft or summary first (in this thread), then ask me to change it.",
    # Reminders and digests.
    "reminder.set": "⏰ I'll remind you {when}: {what}",
    "reminder.set_recurring": "⏰ I'll remind you {when} and then {recurrence}: {what}",
    "reminder.fire": "⏰ Reminder for {user}: {what}",
    "digest.subscribed": "📰 I'll post a digest of this channel {schedule} ({timezone}).",
    "digest.unsubscribed": "📰 Digest for this channel switched off.",
    "digest.none": "This channel has no digest to switch off.",
    "digest.header": "📰 Digest for {start} – {end}",
    "digest.counts": "Tasks: {done} done · {pending} pending · {failed} failed · 👍 {up} · 👎 {down}",
    "digest.task": "• #{id} {kind} — {status}",
    "digest.recap_pending": "The conversation recap follows as #{id}.",
    "digest.quiet": "A quiet period: no tasks and no messages.",
    "schedule.daily": "every day at {time}",
    "schedule.weekly": "every {day} at {time}",
    # Console adapter.
    "console.result": "Result of #{id} {kind}:",
    "console.waiting": "Waiting for {n} task(s) to finish…",
    "console.timeout": "Stopped waiting after {seconds}s; {n} task(s) still open. They stay queued.",
    "console.starting": "Starting atombot (the first start prepares its models: a few minutes on a small CPU). Logs: {log_file}",
    "console.greeting": "Type a request and press Enter, for example: draft an email to Dana about the delayed shipment. (help lists what I can do, /rate ID up|down rates a result, Ctrl-D quits.)",
    "console.model_loading": "Loading the text model… (about a minute on the first start; requests you type meanwhile wait in the queue)",
    "console.model_ready": "Text model ready ({seconds}s).",
    # Errors.
    "error.internal": "Something went wrong on my side; the request is kept and I logged the details. Please try again in a moment.",
    "error.not_allowed": "Sorry, this bot is not enabled for this chat.",
    # Telegram adapter.
    "tg.command.start": "Start and see what I can do",
    "tg.command.help": "What I can do, with examples",
    "tg.command.email": "Draft an email: /email to Dana about the delay",
    "tg.command.reply": "Draft a reply (send it as a reply to the message)",
    "tg.command.summarize": "Summarize: reply to a message, or /summarize last 50",
    "tg.command.status": "Your recent tasks, or /status 42",
    "tg.command.cancel": "Cancel a task: /cancel 42",
    "tg.command.digest": "Daily digest of this chat: /digest at 9am, /digest off",
    "tg.command.forget": "Delete the messages I keep of this chat and stop keeping them",
    "tg.command.privacy": "What I keep of this chat; /privacy off or on",
    "tg.privacy.on": "I keep the text messages of this chat for {days} days so that /summarize can work (Telegram does not let bots read chat history). /privacy off stops that and /forget also deletes what I kept.",
    "tg.privacy.off": "I don't keep the messages of this chat, so /summarize only sees what you send with it. /privacy on lets me keep them for {days} days.",
    "tg.privacy.usage": "Use /privacy, /privacy on or /privacy off.",
    "tg.forgotten": "Deleted {n} kept message(s) of this chat; I won't keep new ones. /privacy on switches this back on.",
    "tg.usage.email": "Tell me what to write, for example: /email to Dana about the delay",
    "tg.usage.reply": "Send /reply as a reply to the message you want me to answer.",
    "tg.usage.cancel": "Which task? For example: /cancel 42 (see /status).",
    "tg.summarize.empty": "I have no messages of this chat to summarize yet: I only see messages sent while I'm here, and nothing when memory is off (/privacy).",
    # Slack adapter.
    "slack.ack.working": "Got it, working out the tasks…",
    "slack.home.title": "atombot",
    "slack.home.digests": "Your digest subscriptions:",
    "slack.home.no_digests": "No digests yet. In a channel, ask me to “send a daily digest of this channel at 8am”.",
    "slack.home.digest_line": "<#{channel}>: {schedule} ({timezone})",
    "slack.home.task_line": "#{id} {kind}: {status}",
}

ZH: dict[str, str] = {
    "kind.email.draft": "起草邮件",
    "kind.reply.draft": "起草回复",
    "kind.summarize": "总结",
    "kind.summarize.partial": "部分总结",
    "kind.reminder.create": "提醒",
    "kind.task.status": "状态",
    "kind.task.cancel": "取消",
    "kind.digest.subscribe": "订阅摘要",
    "kind.digest.unsubscribe": "取消摘要",
    "kind.digest.recap": "摘要回顾",
    "kind.help": "帮助",
    "ack.queued": "已加入队列：{tasks}。",
    "ack.duplicate": "正在处理中：{tasks}。",
    "ack.duplicate_empty": "这条消息我已经回复过了。",
    "ack.task": "#{id} {kind}",
    "ack.and_answered": "{answer}",
    "input.empty": "请告诉我要做什么，例如：“给 Dana 起草一封关于发货延迟的邮件”或“总结这个讨论串”。输入 帮助 查看我能做的所有事情。",
    "input.too_long": "这条消息有 {length} 个字符，我最多能处理 {limit} 个。请发送更短的请求，或分段粘贴文本。",
    "input.unreadable": "我无法读取这条消息（没有可读的文字）。请以纯文本发送。",
    "input.oos": "抱歉，这件事我做不了。我可以起草邮件和回复、总结讨论串、频道或文本、设置提醒、发送每日摘要并汇报任务进度。输入 帮助 查看示例。",
    "input.ask.recipients": "这封邮件要发给谁？例如：“给 Dana 起草一封关于……的邮件”。",
    "input.ask.when": "什么时候提醒你？例如：“明天 9 点提醒我发送报告”。",
    "input.ask.generic": "我还需要一些信息：{missing}。",
    "help": (
        "我会把请求拆成小任务并逐一完成：\n"
        "• 给 Dana 起草一封关于发货延迟的邮件\n"
        "• 帮我起草对这条消息的回复\n"
        "• 总结这个讨论串 / 总结 #sales 从昨天以来的内容\n"
        "• 明天 9 点提醒我发送报告\n"
        "• 每天早上 8 点发送本频道的摘要\n"
        "• 状态（或 状态 #42）· 取消 #42\n"
        "可以一次提出多个请求：“总结这个讨论串，然后把结果发邮件给 Dana”。"
        "请用 👍 或 👎 为每个结果评分，帮助我改进。"
    ),
    "status.queued": "⏳ #{id} {kind} — 排队中{position}",
    "status.queue_position": "（第 {n} 位）",
    "status.waiting": "⏳ #{id} {kind} — 等待 #{deps}",
    "status.running": "⚙️ #{id} {kind} — {bar} {percent}% · {elapsed} 秒",
    "status.retrying": "🔁 #{id} {kind} — 重试中（{reason}）",
    "status.succeeded": "✅ #{id} {kind}",
    "status.failed": "❌ #{id} {kind} 失败：{reason}",
    "status.cancelled": "🚫 #{id} {kind} 已取消",
    "status.tally": "👍 {up} · 👎 {down}",
    "status.continued": "（续 {part}/{parts}）",
    "status.none": "你还没有任务。",
    "status.header": "你最近的任务：",
    "status.line": "#{id} {kind}：{status}",
    "state.queued": "排队中",
    "state.running": "进行中",
    "state.succeeded": "已完成",
    "state.failed": "失败",
    "state.cancelled": "已取消",
    "reason.worker_lost": "处理它的工作进程中断了",
    "reason.model_unavailable": "文本模型不可用（{detail}）",
    "reason.generation_failed": "文本生成失败（{detail}）",
    "reason.dependency": "它依赖的任务没有成功",
    "reason.unknown": "{detail}",
    "button.up": "👍",
    "button.down": "👎",
    "button.regenerate": "重新生成",
    "button.cancel": "取消",
    "rate.recorded_up": "谢谢！已为 #{id} 记录 👍。",
    "rate.recorded_down": "谢谢，已为 #{id} 记录 👎。可以点“重新生成”再试一次。",
    "rate.unchanged": "你对 #{id} 的评分已经记录过了。",
    "rate.not_finished": "任务 #{id} 还没有完成；结果出来后再评分吧。",
    "rate.not_found": "这里没有任务 #{id}。",
    "rate.usage": "用法：/rate 编号 up|down",
    "rate.by": "{emoji} 来自 {user}",
    "cancel.done": "已取消 #{id}。",
    "cancel.already_finished": "任务 #{id} 已经结束（{status}）。",
    "cancel.not_found": "这里没有你的任务 #{id}。",
    "cancel.none_active": "你没有正在进行或排队的任务可以取消。",
    "regenerate.queued": "正在重新生成 #{id}，新任务为 #{new_id}。",
    "regenerate.not_possible": "任务 #{id} 无法重新生成。",
    "followup.no_result": "这里还没有可供{kind}使用的结果。请先（在这个讨论串里）让我起草或总结，然后再让我修改。",
    "reminder.set": "⏰ 我会在 {when} 提醒你：{what}",
    "reminder.set_recurring": "⏰ 我会在 {when} 提醒你，之后{recurrence}：{what}",
    "reminder.fire": "⏰ 提醒 {user}：{what}",
    "digest.subscribed": "📰 我会{schedule}发布本频道的摘要（{timezone}）。",
    "digest.unsubscribed": "📰 已关闭本频道的摘要。",
    "digest.none": "本频道没有可关闭的摘要。",
    "digest.header": "📰 {start} – {end} 的摘要",
    "digest.counts": "任务：已完成 {done} · 待处理 {pending} · 失败 {failed} · 👍 {up} · 👎 {down}",
    "digest.task": "• #{id} {kind} — {status}",
    "digest.recap_pending": "对话回顾稍后以 #{id} 发布。",
    "digest.quiet": "这段时间很安静：没有任务，也没有消息。",
    "schedule.daily": "每天 {time}",
    "schedule.weekly": "每{day} {time}",
    "console.result": "#{id} {kind} 的结果：",
    "console.waiting": "正在等待 {n} 个任务完成……",
    "console.timeout": "等待 {seconds} 秒后停止；仍有 {n} 个任务未完成，它们保留在队列中。",
    "console.starting": "正在启动 atombot（首次启动需要准备模型：在小型 CPU 上需要几分钟）。日志：{log_file}",
    "console.greeting": "输入一个请求并按回车，例如：给 Dana 起草一封关于发货延迟的邮件。（输入 help 查看我能做什么，/rate 编号 up|down 为结果评分，Ctrl-D 退出。）",
    "console.model_loading": "正在加载文本模型……（首次启动约需一分钟；期间输入的请求会在队列中等待）",
    "console.model_ready": "文本模型已就绪（{seconds} 秒）。",
    "error.internal": "我这边出了点问题；请求已保存，详细信息已记录。请稍后再试。",
    "error.not_allowed": "抱歉，此聊天未启用本机器人。",
    "tg.command.start": "开始使用并查看我能做什么",
    "tg.command.help": "我能做什么（附示例）",
    "tg.command.email": "起草邮件：/email 给 Dana 说明延迟",
    "tg.command.reply": "起草回复（以回复要回答的消息的方式发送）",
    "tg.command.summarize": "总结：回复某条消息，或 /summarize last 50",
    "tg.command.status": "查看最近的任务，或 /status 42",
    "tg.command.cancel": "取消任务：/cancel 42",
    "tg.command.digest": "本聊天的每日摘要：/digest at 9am，/digest off",
    "tg.command.forget": "删除我保存的本聊天消息并停止保存",
    "tg.command.privacy": "我保存了本聊天的什么；/privacy off 或 on",
    "tg.privacy.on": "我会保存本聊天的文字消息 {days} 天，以便 /summarize 使用（Telegram 不允许机器人读取聊天记录）。/privacy off 停止保存，/forget 还会删除已保存的消息。",
    "tg.privacy.off": "我不保存本聊天的消息，所以 /summarize 只能看到随命令发送的内容。/privacy on 让我保存 {days} 天。",
    "tg.privacy.usage": "请使用 /privacy、/privacy on 或 /privacy off。",
    "tg.forgotten": "已删除本聊天保存的 {n} 条消息，之后不再保存。/privacy on 可重新开启。",
    "tg.usage.email": "请告诉我写什么，例如：/email 给 Dana 说明延迟",
    "tg.usage.reply": "请以回复要回答的消息的方式发送 /reply。",
    "tg.usage.cancel": "取消哪个任务？例如：/cancel 42（见 /status）。",
    "tg.summarize.empty": "我还没有本聊天可总结的消息：我只能看到我在群里之后发送的消息，关闭记忆时（/privacy）则什么都不保存。",
    "slack.ack.working": "收到，正在拆分任务……",
    "slack.home.title": "atombot",
    "slack.home.digests": "你订阅的摘要：",
    "slack.home.no_digests": "还没有摘要。在频道里对我说“每天早上8点发送这个频道的摘要”。",
    "slack.home.digest_line": "<#{channel}>：{schedule}（{timezone}）",
    "slack.home.task_line": "#{id} {kind}：{status}",
}

CATALOG: dict[str, dict[str, str]] = {"en": EN, "zh": ZH}

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
_LATIN = re.compile(r"[A-Za-z]")


def t(key: str, locale: str = "en", /, **values: Any) -> str:
    """The text for ``key`` in ``locale`` with ``values`` filled in."""
    table = CATALOG.get(locale, EN)
    template = table.get(key) or EN[key]
    return template.format(**values) if values else template


def placeholders(template: str) -> set[str]:
    """The ``{names}`` a template expects (used to keep the locales in step)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def detect_locale(text: str) -> str:
    """``zh`` when the text is mostly Chinese, else ``en``."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    return "zh" if cjk and cjk * 3 >= latin else "en"


def language_name(locale: str) -> str:
    """The language a model should write in for ``locale`` (used in prompts, not shown)."""
    return {"zh": "Simplified Chinese", "en": "English"}.get(locale, "English")
