"""Atomization generalises to an operator's own intents file: no trigger words, no kind lists.

The classifier here is trained on a small office-services intents file written below
(English and Chinese), never on chained messages; chains, ellipsis and the no-over-split
cases must still come out right.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.intents import IntentClassifier, load_intents

INTENTS = """\
nlu:
  - intent: room.book
    examples: |
      - book a meeting room
      - book a meeting room for tomorrow at 10
      - reserve a conference room for the design review
      - can you book the big room on Friday afternoon
      - I need a room for six people on Monday
      - grab a meeting room for the team sync at 3pm
      - reserve the boardroom for Thursday morning
      - find me a quiet room for an interview at 2
      - book a room with a projector for the client visit
      - please reserve room 4B for the offsite planning
      - get us a huddle room for half an hour
      - book the training room next Wednesday
      - set aside a room for the quarterly review
      - reserve a small room for a one on one with Priya
      - I want to book a room for the all hands
      - book a room for Tom and Jerry at noon
      - 订一间会议室
      - 帮我订明天上午十点的会议室
      - 预订周五下午的大会议室
      - 给设计评审订个会议室
      - 帮我约一个能坐六个人的会议室
      - 订一下周三的培训室
      - 帮我预留一个带投影仪的会议室
      - 下午三点订个小会议室
  - intent: lunch.order
    examples: |
      - order lunch
      - order lunch for the team
      - get me a chicken salad for lunch
      - order pizza for twelve people at noon
      - can you order sushi for the meeting
      - I'd like a vegetarian lunch box delivered at 12
      - order sandwiches for the workshop
      - get lunch for the interview panel
      - order noodles for me and Kim
      - please order coffee and pastries for the morning meeting
      - order food for the offsite
      - get us burgers for lunch today
      - order a vegan lunch for Lee
      - lunch order for the sales team please
      - book lunch delivery for Friday
      - order two salads and a soup
      - 帮我点午餐
      - 给团队订午饭
      - 中午帮我订一份鸡肉沙拉
      - 给会议订十二份披萨
      - 帮我点一份素食便当
      - 给面试官们订午餐
      - 点两份牛肉面
      - 帮我们订咖啡和点心
  - intent: expense.file
    examples: |
      - file an expense
      - file an expense for the taxi to the airport
      - submit my hotel receipt
      - I need to expense the client dinner
      - claim the train tickets from last week
      - file a reimbursement for the conference fee
      - expense 45 dollars for parking
      - submit an expense report for the Berlin trip
      - log my mileage for the site visit
      - get me reimbursed for the team lunch
      - file the flight to Shanghai as an expense
      - please submit the receipt for the new keyboard
      - expense the software license
      - claim my phone bill for March
      - add the client gifts to my expenses
      - reimburse the visa fee
      - 报销打车费
      - 帮我提交酒店发票
      - 报销上周的火车票
      - 把客户晚餐报销一下
      - 提交出差柏林的报销单
      - 报销停车费四十五元
      - 帮我申请会议费报销
      - 把新键盘的发票报了
  - intent: oos
    examples: |
      - tell me a joke
      - what's the weather like
      - who won the game last night
      - how tall is mount everest
      - write me a poem about cats
      - what is the meaning of life
      - play some music
      - translate hello into french
      - how do I bake bread
      - what time is it in Tokyo
      - recommend a movie
      - thanks
      - ok
      - hello there
      - 讲个笑话
      - 今天天气怎么样
      - 珠穆朗玛峰有多高
      - 推荐一部电影
      - 谢谢
      - 你好
"""

# (message, expected intents in order)
CASES: list[tuple[str, list[str]]] = [
    ("book a meeting room for Friday and order lunch for the team", ["room.book", "lunch.order"]),
    (
        "reserve the boardroom for Monday, then file an expense for the taxi",
        ["room.book", "expense.file"],
    ),
    (
        "order pizza for the workshop, file my hotel receipt and then book the training room",
        ["lunch.order", "expense.file", "room.book"],
    ),
    (
        "file an expense for the parking. Also order sushi for the meeting",
        ["expense.file", "lunch.order"],
    ),
    ("order lunch for Lee and another one for Kim", ["lunch.order", "lunch.order"]),
    (
        "book a room for the design review and another one for the client visit",
        ["room.book", "room.book"],
    ),
    # No over-split: "and" inside one request.
    ("book a room for Tom and Jerry at noon", ["room.book"]),
    ("order coffee and pastries for the morning meeting", ["lunch.order"]),
    ("order two salads and a soup for Priya", ["lunch.order"]),
    ("submit the receipts for the taxi and the hotel", ["expense.file"]),
    ("book a room with a projector", ["room.book"]),
    ("tell me a joke", ["oos"]),
    # Protected tokens.
    ("expense the invoice_v1.2.pdf from jane.doe@example.com", ["expense.file"]),
    ("order lunch for Mr. Lee, e.g. a 3.5 dollar sandwich", ["lunch.order"]),
    # Chinese.
    ("帮我订明天的会议室，然后给团队点午餐", ["room.book", "lunch.order"]),
    ("报销打车费，另外订一间周五的会议室", ["expense.file", "room.book"]),
    ("帮我点午餐，报销上周的火车票，再订一间培训室", ["lunch.order", "expense.file", "room.book"]),
    ("给李雷订一份午餐，再来一个给韩梅梅", ["lunch.order", "lunch.order"]),
    ("帮我们订咖啡和点心", ["lunch.order"]),
    ("把report_v1.2.pdf的费用报销一下", ["expense.file"]),
    ("讲个笑话", ["oos"]),
]


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> IntentClassifier:
    """A classifier trained once on the office-services intents file above."""
    root = Path(os.environ.get("ATOMBOT_TEST_CACHE", tmp_path_factory.mktemp("office")))
    path = tmp_path_factory.mktemp("office-intents") / "intents.yaml"
    path.write_text(INTENTS, encoding="utf-8")
    return IntentClassifier.from_intents(load_intents(path), cache_dir=root / "onnx")


@pytest.mark.parametrize(("message", "intents"), CASES, ids=[c[0][:40] for c in CASES])
def test_an_operators_own_intents_atomize(
    office: IntentClassifier, message: str, intents: list[str]
) -> None:
    assert [s.intent for s in office.parse(message)] == intents


def test_the_elliptical_request_covers_its_own_words(office: IntentClassifier) -> None:
    message = "order lunch for Lee and another one for Kim"
    specs = office.parse(message)
    assert [message[s.span[0] : s.span[1]] for s in specs] == [
        "order lunch for Lee",
        "another one for Kim",
    ]
