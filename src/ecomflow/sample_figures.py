"""Made-up traffic and ad reports (生意参谋 店铺/商品, 直通车, 钻展) for tests, benchmarks and the README.

The header rows are the ones the shipped tmall mapping reads (their exact spelling is inferred, see the
mapping file). Days run from START's day; every figure is drawn from the seed, so the same seed makes the
same file. `later=True` writes the same rows as the platform corrects them a few days on: the ad GMV of every
third row grows (orders attributed within the 15-day window) and the traffic of every third day gains
visitors. K malformed rows: a bad amount, a bad day, a count out of order, a missing plan or day, in turn.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

TRAFFIC_HEADER = ["统计日期", "店铺名称", "访客数", "浏览量", "支付金额", "支付买家数", "支付转化率", "客单价"]
TRAFFIC_ITEM_HEADER = [
    "统计日期",
    "商品ID",
    "商品名称",
    "商家编码",
    "商品访客数",
    "商品浏览量",
    "支付买家数",
    "支付金额",
    "支付转化率",
]
ZTC_HEADER = [
    "日期",
    "计划名称",
    "创意ID",
    "创意名称",
    "展现量",
    "点击量",
    "点击率",
    "花费",
    "平均点击花费",
    "总成交金额",
    "总成交笔数",
    "投入产出比",
]
ZZ_HEADER = ["日期", "计划名称", "展现量", "点击量", "点击率", "消耗", "成交金额", "投入产出比"]
SHOP = "棉言旗舰店"
# Items of the sample catalogue (product code, title) the item report and the creatives speak of.
ITEMS = [
    ("TEE", "纯棉圆领T恤"),
    ("HOODIE", "加绒连帽卫衣"),
    ("JEANS-SL", "修身弹力牛仔裤"),
    ("DOWN-S", "轻薄短款羽绒服"),
]
PLANS = {"ztc": ["日常销售-T恤", "爆款卫衣", "新品牛仔"], "zz": ["首页焦点图", "猜你喜欢-羽绒服"]}
# The day the sample orders start (sample_exports.START).
FIRST_DAY = date(2026, 11, 1)


def creative_id(plan_number: int, seed: int = 1) -> str:
    """The 创意ID of a plan's creative in the sample 直通车 report."""
    return f"{880000000 + seed * 1000 + plan_number}"


def _percent(part: int, whole: int) -> str:
    return "0.00%" if not whole else f"{(Decimal(part) * 100 / whole).quantize(Decimal('0.01'), ROUND_HALF_UP)}%"


def _day(number: int) -> date:
    return FIRST_DAY + timedelta(days=number)


class FigureMaker:
    """Makes the rows of the traffic and ad reports; `bad` maps a row number to how it is spoilt."""

    def __init__(self, seed: int, later: bool, bad: dict[int, str]) -> None:
        self.seed, self.later, self.bad = seed, later, bad

    def _random(self, number: int) -> random.Random:
        return random.Random(self.seed * 1_000_003 + number)

    def _spoil(
        self, number: int, row: dict[str, str], *, amount: str, day: str, small: str, big: str, key: str
    ) -> None:
        how = self.bad.get(number)
        if how == "amount":
            row[amount] = "12.3.4"
        elif how == "time":
            row[day] = "2026-13-45"
        elif how == "status":
            row[small] = str(int(row[big].replace(",", "")) + 1)
        elif how == "id":
            row[key] = ""

    def traffic(self, count: int) -> Iterator[list[str]]:
        """The shop's days: one row per day from the first day."""
        for number in range(count):
            rnd = self._random(number)
            visitors = rnd.randint(800, 5000) + (37 if self.later and number % 3 == 0 else 0)
            buyers = rnd.randint(10, visitors // 20)
            amount = Decimal(buyers * rnd.randint(120, 260)) + Decimal(rnd.randint(0, 99)) / 100
            row = {
                "统计日期": _day(number).isoformat(),
                "店铺名称": SHOP,
                "访客数": f"{visitors:,}",
                "浏览量": str(visitors * rnd.randint(2, 4)),
                "支付金额": f"{amount:.2f}",
                "支付买家数": str(buyers),
                "支付转化率": _percent(buyers, visitors),
                "客单价": f"{(amount / buyers).quantize(Decimal('0.01'), ROUND_HALF_UP)}",
            }
            self._spoil(
                number, row, amount="支付金额", day="统计日期", small="支付买家数", big="访客数", key="统计日期"
            )
            yield [row[h] for h in TRAFFIC_HEADER]

    def traffic_items(self, count: int) -> Iterator[list[str]]:
        """The items' days: each day a row per sample item, `count` rows in all."""
        for number in range(count):
            rnd = self._random(number)
            code, title = ITEMS[number % len(ITEMS)]
            visitors = rnd.randint(100, 1200) + (11 if self.later and number % 3 == 0 else 0)
            buyers = rnd.randint(0, visitors // 15)
            row = {
                "统计日期": _day(number // len(ITEMS)).isoformat(),
                "商品ID": f"{650000000000 + number % len(ITEMS)}",
                "商品名称": title,
                "商家编码": code,
                "商品访客数": str(visitors),
                "商品浏览量": str(visitors * 2),
                "支付买家数": str(buyers),
                "支付金额": f"{buyers * rnd.randint(99, 399)}.00",
                "支付转化率": _percent(buyers, visitors),
            }
            self._spoil(
                number, row, amount="支付金额", day="统计日期", small="支付买家数", big="商品访客数", key="统计日期"
            )
            yield [row[h] for h in TRAFFIC_ITEM_HEADER]

    def ads(self, count: int, source: str) -> Iterator[list[str]]:
        """A channel's plan days: each day a row per plan (直通车: per plan's creative), `count` rows in all."""
        plans = PLANS[source]
        for number in range(count):
            rnd = self._random(number)
            plan_number = number % len(plans)
            impressions = rnd.randint(2000, 60000)
            clicks = rnd.randint(0, impressions // 25)
            spend = (Decimal(clicks) * Decimal(rnd.randint(40, 180)) / 100).quantize(Decimal("0.01"))
            gmv = Decimal(rnd.randint(0, 40) * rnd.randint(99, 299)) + Decimal(rnd.randint(0, 99)) / 100
            if self.later and number % 3 == 0:
                gmv += Decimal("199.00")
            row = {
                "日期": _day(number // len(plans)).isoformat(),
                "计划名称": plans[plan_number],
                "创意ID": creative_id(plan_number, self.seed),
                "创意名称": f"{plans[plan_number]} 主图{plan_number + 1}",
                "展现量": str(impressions),
                "点击量": str(clicks),
                "点击率": _percent(clicks, impressions),
                "花费": f"{spend:.2f}",
                "消耗": f"{spend:.2f}",
                "平均点击花费": f"{(spend / clicks).quantize(Decimal('0.01'), ROUND_HALF_UP)}" if clicks else "0.00",
                "总成交金额": f"{gmv:.2f}",
                "成交金额": f"{gmv:.2f}",
                "总成交笔数": str(rnd.randint(0, 40)),
                "投入产出比": f"{(gmv / spend).quantize(Decimal('0.01'), ROUND_HALF_UP)}" if spend else "0.00",
            }
            money = "花费" if source == "ztc" else "消耗"
            self._spoil(number, row, amount=money, day="日期", small="点击量", big="展现量", key="计划名称")
            yield [row[h] for h in (ZTC_HEADER if source == "ztc" else ZZ_HEADER)]
