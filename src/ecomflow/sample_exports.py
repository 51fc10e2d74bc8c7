"""Made-up exports in the platforms' own formats, for tests, benchmarks and the README: no real customer data.

Real header rows (Tmall 订单报表 + 宝贝报表, 退款报表, 评价; JD 订单导出), masked buyer fields as the platforms
mask them (t**8, 138****1234, 张**), SKUs of the shipped sample catalogue, a spread of statuses, kinds and
ratings, and K malformed rows (a bad amount, a bad time, an unknown status, a missing id, in turn).
`later=True` writes the same orders/refunds some days on: statuses moved forward, so a re-import updates them.
Rows are written as they are made: a 100,000-row file never sits in memory.
"""

from __future__ import annotations

import csv
import random
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from ecomflow.engine.shop.catalog import CODE
from ecomflow.sample_data import sample_catalogue_path
from ecomflow.sample_figures import TRAFFIC_HEADER, TRAFFIC_ITEM_HEADER, ZTC_HEADER, ZZ_HEADER, FigureMaker

FORMATS = ("gbk", "utf8-bom", "xlsx")
START = datetime(2026, 11, 1, 9, 0, 0)
TIME = "%Y-%m-%d %H:%M:%S"

TMALL_ORDER_HEADER = [
    "订单编号",
    "买家会员名",
    "买家支付宝账号",
    "买家应付货款",
    "买家应付邮费",
    "买家支付积分",
    "总金额",
    "返点积分",
    "买家实际支付金额",
    "买家实际支付积分",
    "订单状态",
    "买家留言",
    "收货人姓名",
    "收货地址",
    "运送方式",
    "联系电话",
    "联系手机",
    "订单创建时间",
    "订单付款时间",
    "宝贝标题",
    "宝贝种类",
    "物流单号",
    "物流公司",
    "订单备注",
    "宝贝总数量",
    "店铺Id",
    "店铺名称",
    "订单关闭原因",
    "卖家服务费",
    "买家服务费",
    "发票抬头",
    "是否手机订单",
    "修改后的收货地址",
    "异常信息",
    "退款金额",
]
TMALL_ITEM_HEADER = [
    "订单编号",
    "标题",
    "价格",
    "购买数量",
    "外部系统编号",
    "商品属性",
    "套餐信息",
    "备注",
    "订单状态",
    "商家编码",
]
TMALL_REFUND_HEADER = [
    "订单编号",
    "退款编号",
    "支付宝交易号",
    "订单付款时间",
    "宝贝标题",
    "商家编码",
    "退款完结时间",
    "买家实际支付金额",
    "买家退款金额",
    "手工退款/系统退款",
    "是否需要退货",
    "退款的申请时间",
    "退款状态",
    "货物状态",
    "退货物流信息",
    "客服介入状态",
    "买家会员名称",
    "买家退款原因",
    "退款说明",
]
TMALL_REVIEW_HEADER = ["订单编号", "子订单编号", "评价时间", "评价结果", "评价内容", "宝贝标题", "商家编码", "买家昵称"]
JD_ORDER_HEADER = [
    "订单号",
    "商品ID",
    "商品名称",
    "订购数量",
    "支付方式",
    "下单时间",
    "京东价",
    "订单金额",
    "结算金额",
    "余额支付",
    "应付金额",
    "订单状态",
    "订单类型",
    "下单帐号",
    "客户姓名",
    "客户地址",
    "联系电话",
    "订单备注",
    "发票类型",
    "发票抬头",
    "发票内容",
    "商家备注",
    "商家备注等级（等级1-5为由高到低）",
    "运费金额",
    "付款确认时间",
    "增值税发票",
    "货号",
    "订单完成时间",
    "订单来源",
    "订单渠道",
]

TMALL_STATUSES = ["等待买家付款", "买家已付款，等待卖家发货", "卖家已发货，等待买家确认", "交易成功", "交易关闭"]
# What each status becomes some days on (later=True).
TMALL_LATER = {
    "等待买家付款": "交易关闭",
    "买家已付款，等待卖家发货": "卖家已发货，等待买家确认",
    "卖家已发货，等待买家确认": "交易成功",
}
JD_STATUSES = ["等待付款", "等待出库", "等待确认收货", "完成", "已取消"]
JD_LATER = {"等待付款": "已取消", "等待出库": "等待确认收货", "等待确认收货": "完成"}
REFUND_STATUSES = [
    "买家已经申请退款，等待卖家同意",
    "卖家已经同意退款，等待买家退货",
    "买家已经退货，等待卖家确认收货",
    "退款成功",
    "卖家拒绝退款",
    "退款关闭",
]
REFUND_LATER = {
    "买家已经申请退款，等待卖家同意": "卖家已经同意退款，等待买家退货",
    "卖家已经同意退款，等待买家退货": "买家已经退货，等待卖家确认收货",
    "买家已经退货，等待卖家确认收货": "退款成功",
}
REFUND_KINDS = ["否", "是", "换货"]
REFUND_REASONS = ["尺码不合适", "七天无理由退换货", "质量问题", "颜色与描述不符", "不想要了"]
REVIEWS = [("好评", "面料舒服，尺码标准"), ("好评", "物流很快"), ("中评", "一般，有点起球"), ("差评", "洗了一次就变形")]
CARRIERS = ["顺丰速运", "中通快递", "圆通速递", "韵达快递"]
SURNAMES = "王李张刘陈杨赵黄周吴"
PROVINCES = ["浙江省 杭州市 西湖区", "上海 上海市 浦东新区", "广东省 深圳市 南山区", "江苏省 南京市 鼓楼区"]
MALFORMED = ("amount", "time", "status", "id")
# Reports of figures rather than orders: sample_figures.py makes them.
FIGURE_KINDS = ("traffic", "traffic_items", "ads")


def items_path(out: Path) -> Path:
    """Where a Tmall order export's 宝贝报表 goes: OUT with -items before its suffix."""
    return out.with_name(f"{out.stem}-items{out.suffix}")


def catalogue_skus() -> list[tuple[str, str, Decimal]]:
    """(sku, title, list price) of the shipped sample catalogue."""
    with sample_catalogue_path().open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    return [
        (r["sku"], f"{r['title']} {r['colour']} {r['size']}", Decimal(r["list_price"]))
        for r in rows
        if CODE.match(r["sku"])
    ]


def write_export(
    kind: str,
    platform: str,
    out: Path,
    *,
    count: int,
    fmt: str = "gbk",
    malformed: int = 0,
    seed: int = 1,
    later: bool = False,
    start: datetime = START,
    ad_source: str = "ztc",
) -> list[Path]:
    """Write a sample export of `count` rows (orders: orders) and return the files written.

    Rows are dated from `start` (Shanghai local time), one every ~37 s. Traffic (the shop's 生意参谋 days),
    traffic_items (the items' days) and ads (a 直通车 or 钻展 report, by `ad_source`) are Tmall's only.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: one of {', '.join(FORMATS)}")
    if (fmt == "xlsx") != (out.suffix.lower() == ".xlsx"):
        raise ValueError(f"{out.name}: an {fmt} export is named {'.xlsx' if fmt == 'xlsx' else '.csv'}")
    bad = _malformed_rows(count, malformed, seed)
    if platform == "tmall" and kind in FIGURE_KINDS:
        figures = FigureMaker(seed, later, bad)
        if kind == "ads":
            if ad_source not in ("ztc", "zz"):
                raise ValueError(f"an ad report is of ztc (直通车) or zz (钻展), not {ad_source!r}")
            _write(out, ZTC_HEADER if ad_source == "ztc" else ZZ_HEADER, figures.ads(count, ad_source), fmt)
        elif kind == "traffic":
            _write(out, TRAFFIC_HEADER, figures.traffic(count), fmt)
        else:
            _write(out, TRAFFIC_ITEM_HEADER, figures.traffic_items(count), fmt)
        return [out]
    maker = _Maker(seed, later, bad, start)
    if platform == "tmall" and kind == "orders":
        items: list[list[str]] = []
        orders = _collect_items(maker.tmall_orders(count), items)
        _write(out, TMALL_ORDER_HEADER, orders, fmt, items_out=(items_path(out), items))
        return [out, items_path(out)]
    rows = {
        ("tmall", "refunds"): (TMALL_REFUND_HEADER, maker.tmall_refunds),
        ("tmall", "reviews"): (TMALL_REVIEW_HEADER, maker.tmall_reviews),
        ("jd", "orders"): (JD_ORDER_HEADER, maker.jd_orders),
    }.get((platform, kind))
    if rows is None:
        raise ValueError(f"no sample {platform} {kind} export: {platform} {kind} exports are not mapped")
    header, make = rows
    _write(out, header, make(count), fmt)
    return [out]


def _malformed_rows(count: int, malformed: int, seed: int) -> dict[int, str]:
    """Which rows (0-based) are malformed and how; never the last one, which would read as a truncated file."""
    if malformed <= 0 or count < 2:
        return {}
    chosen = sorted(random.Random(seed + 7).sample(range(count - 1), min(malformed, count - 1)))
    return {row: MALFORMED[n % len(MALFORMED)] for n, row in enumerate(chosen)}


def _collect_items(orders: Iterator[tuple[list[str], list[list[str]]]], items: list[list[str]]) -> Iterator[list[str]]:
    """Yield the order rows while handing each order's item rows to the items writer."""
    for order, lines in orders:
        items.extend(lines)
        yield order


class _Maker:
    """Makes rows; the same seed makes the same orders, `later` moves their statuses forward."""

    def __init__(self, seed: int, later: bool, bad: dict[int, str], start: datetime = START) -> None:
        self.random = random.Random(seed)
        self.start = start
        self.seed = seed
        self.later = later
        self.bad = bad
        self.skus = catalogue_skus()

    def _buyer(self) -> dict[str, str]:
        rnd = self.random
        return {
            "nick": f"{rnd.choice('tbjxmq')}**{rnd.randint(0, 9)}",
            "name": f"{rnd.choice(SURNAMES)}**",
            "phone": f"1{rnd.choice('3589')}{rnd.randint(0, 9)}****{rnd.randint(0, 9999):04d}",
            "address": f"{rnd.choice(PROVINCES)} ******",
        }

    def _row(self, number: int) -> None:
        """A row's own random draws: an earlier row's status never shifts a later row's buyer or SKUs."""
        self.random = random.Random(self.seed * 1_000_003 + number)

    def _when(self, number: int) -> datetime:
        return self.start + timedelta(seconds=number * 37 + self.random.randint(0, 30))

    def _status(self, statuses: list[str], moves: dict[str, str], number: int) -> str:
        status = statuses[(number * 7 + self.seed) % len(statuses)]
        return moves.get(status, status) if self.later else status

    def _spoil(self, number: int, row: dict[str, str], *, amount: str, time: str, status: str, key: str) -> None:
        how = self.bad.get(number)
        if how == "amount":
            row[amount] = "12.3.4"
        elif how == "time":
            row[time] = "2026-13-45 25:61:00"
        elif how == "status":
            row[status] = "发货中"
        elif how == "id":
            row[key] = ""

    def tmall_orders(self, count: int) -> Iterator[tuple[list[str], list[list[str]]]]:
        for number in range(count):
            self._row(number)
            order_no = f"{3801234500000000 + self.seed * 10_000_000 + number}"
            status = self._status(TMALL_STATUSES, TMALL_LATER, number)
            buyer = self._buyer()
            picked = [self.random.choice(self.skus) for _ in range(1 + number % 3)]
            quantities = [1 + self.random.randint(0, 2) // 2 for _ in picked]
            goods = sum((price * qty for (_, _, price), qty in zip(picked, quantities, strict=True)), Decimal(0))
            postage = Decimal("0.00") if goods >= 99 else Decimal("10.00")
            ordered = self._when(number)
            paid = status != "等待买家付款"
            shipped = status in ("卖家已发货，等待买家确认", "交易成功")
            row = dict.fromkeys(TMALL_ORDER_HEADER, "")
            row.update(
                {
                    "订单编号": f'="{order_no}"',
                    "买家会员名": buyer["nick"],
                    "买家支付宝账号": f"{buyer['phone'][:3]}****{buyer['phone'][-4:]}",
                    "买家应付货款": f"{goods:.2f}",
                    "买家应付邮费": f"{postage:.2f}",
                    "买家支付积分": "0",
                    "总金额": f"{goods + postage:.2f}",
                    "返点积分": "0",
                    "买家实际支付金额": f"{goods + postage:.2f}" if paid else "0.00",
                    "买家实际支付积分": "0",
                    # Some exports write the ASCII comma: the mapping reads both.
                    "订单状态": status.replace("，", ",") if number % 11 == 5 else status,
                    "买家留言": "请尽快发货" if number % 9 == 0 else "",
                    "收货人姓名": buyer["name"],
                    "收货地址": buyer["address"],
                    "运送方式": "快递",
                    "联系手机": f"'{buyer['phone']}",
                    "订单创建时间": ordered.strftime(TIME),
                    "订单付款时间": (ordered + timedelta(minutes=2)).strftime(TIME) if paid else "",
                    "宝贝标题": picked[0][1] + "\t",
                    "宝贝种类": str(len(picked)),
                    "物流单号": f"No:SF{order_no[-10:]}" if shipped else "",
                    "物流公司": self.random.choice(CARRIERS) if shipped else "",
                    "宝贝总数量": str(sum(quantities)),
                    "店铺Id": "0",
                    "店铺名称": "棉言旗舰店",
                    "订单关闭原因": "买家未付款" if status == "交易关闭" else "订单未关闭",
                    "是否手机订单": "手机订单",
                    "修改后的收货地址": f"{self.random.choice(PROVINCES)} ******" if number % 50 == 3 else "",
                    "异常信息": "",
                    "退款金额": "0.00",
                }
            )
            self._spoil(number, row, amount="买家实际支付金额", time="订单创建时间", status="订单状态", key="订单编号")
            items = [
                [f'="{order_no}"', title, f"{price:.2f}", str(qty), "", "颜色分类", "", "", status, sku]
                for (sku, title, price), qty in zip(picked, quantities, strict=True)
            ]
            yield [row[h] for h in TMALL_ORDER_HEADER], items

    def jd_orders(self, count: int) -> Iterator[list[str]]:
        for number in range(count):
            self._row(number)
            order_no = f"{280000000000 + self.seed * 10_000_000 + number}"
            status = self._status(JD_STATUSES, JD_LATER, number)
            buyer = self._buyer()
            picked = [self.random.choice(self.skus) for _ in range(1 + number % 2)]
            total = sum((price for _, _, price in picked), Decimal(0))
            ordered = self._when(number)
            for sku, title, price in picked:
                row = dict.fromkeys(JD_ORDER_HEADER, "")
                row.update(
                    {
                        "订单号": order_no,
                        "商品ID": str(100000000 + zlib.crc32(sku.encode()) % 10000000),
                        "商品名称": title,
                        "订购数量": "1",
                        "支付方式": "在线支付",
                        "下单时间": ordered.strftime(TIME),
                        "京东价": f"{price:.2f}",
                        "订单金额": f"{total:.2f}",
                        "结算金额": f"{total:.2f}",
                        "余额支付": "0.00",
                        "应付金额": f"{total:.2f}",
                        "订单状态": status,
                        "订单类型": "销售订单",
                        "下单帐号": buyer["nick"],
                        "客户姓名": buyer["name"],
                        "客户地址": buyer["address"],
                        "联系电话": buyer["phone"],
                        "运费金额": "0.00",
                        "付款确认时间": (ordered + timedelta(minutes=1)).strftime(TIME) if status != "等待付款" else "",
                        "货号": sku,
                        "订单完成时间": "null",
                        "订单来源": "移动端订单",
                        "订单渠道": "暂无来源",
                    }
                )
                self._spoil(number, row, amount="应付金额", time="下单时间", status="订单状态", key="订单号")
                yield [row[h] for h in JD_ORDER_HEADER]

    def tmall_refunds(self, count: int) -> Iterator[list[str]]:
        for number in range(count):
            self._row(number)
            sku, title, price = self.random.choice(self.skus)
            kind = REFUND_KINDS[number % len(REFUND_KINDS)]
            status = self._status(REFUND_STATUSES, REFUND_LATER, number)
            asked = self._when(number) + timedelta(days=3)
            ended = status in ("退款成功", "退款关闭", "卖家拒绝退款")
            row = {
                "订单编号": f'="{3801234500000000 + self.seed * 10_000_000 + number}"',
                "退款编号": f'="{118000000000000 + self.seed * 10_000_000 + number}"',
                "支付宝交易号": f"2026110122001{number:010d}",
                "订单付款时间": self._when(number).strftime(TIME),
                "宝贝标题": title,
                "商家编码": sku,
                "退款完结时间": (asked + timedelta(days=2)).strftime(TIME) if ended else "",
                "买家实际支付金额": f"{price:.2f}",
                "买家退款金额": f"￥{price:.2f}" if number % 13 == 4 else f"{price:.2f}",
                "手工退款/系统退款": "系统退款",
                "是否需要退货": kind,
                "退款的申请时间": asked.strftime(TIME),
                "退款状态": status,
                "货物状态": "买家已收到货" if kind != "否" else "买家未收到货",
                "退货物流信息": f"顺丰速运,SF{number:010d}" if status == "买家已经退货，等待卖家确认收货" else "",
                "客服介入状态": "不需客服介入",
                "买家会员名称": self._buyer()["nick"],
                "买家退款原因": REFUND_REASONS[number % len(REFUND_REASONS)],
                "退款说明": "",
            }
            self._spoil(number, row, amount="买家退款金额", time="退款的申请时间", status="退款状态", key="退款编号")
            yield [row[h] for h in TMALL_REFUND_HEADER]

    def tmall_reviews(self, count: int) -> Iterator[list[str]]:
        for number in range(count):
            self._row(number)
            sku, title, _ = self.random.choice(self.skus)
            label, text = REVIEWS[(number + self.seed) % len(REVIEWS)]
            if self.later and label == "中评":
                # A middle review a buyer later changed to a good one.
                label, text = "好评", "追评：客服处理很及时"
            order_no = 3801234500000000 + self.seed * 10_000_000 + number
            row = {
                "订单编号": f'="{order_no}"',
                "子订单编号": f'="{order_no}1"',
                "评价时间": (self._when(number) + timedelta(days=5)).strftime(TIME),
                "评价结果": label,
                "评价内容": text,
                "宝贝标题": title,
                "商家编码": sku,
                "买家昵称": self._buyer()["nick"],
            }
            self._spoil(number, row, amount="评价结果", time="评价时间", status="评价结果", key="子订单编号")
            yield [row[h] for h in TMALL_REVIEW_HEADER]


def _write(
    out: Path,
    header: list[str],
    rows: Iterator[list[str]],
    fmt: str,
    *,
    items_out: tuple[Path, list[list[str]]] | None = None,
) -> None:
    """Write rows as the seller centre does: GBK CSV (CRLF), UTF-8 with BOM CSV, or XLSX; streamed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    writers = _Writers(fmt)
    main = writers.open(out, header)
    item_writer = writers.open(items_out[0], TMALL_ITEM_HEADER) if items_out else None
    try:
        for row in rows:
            main(row)
            if items_out is not None and item_writer is not None:
                for item in items_out[1]:
                    item_writer(item)
                items_out[1].clear()
    finally:
        writers.close()


class _Writers:
    """Open row writers of one format, closed together."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.closers: list[Any] = []

    def open(self, path: Path, header: list[str]) -> Any:
        if self.fmt == "xlsx":
            book = Workbook(write_only=True)
            sheet = book.create_sheet()
            sheet.append(header)
            self.closers.append(lambda: book.save(path))
            # XLSX holds no Excel text guard: the cell is text already.
            return lambda row: sheet.append([c[2:-1] if c.startswith('="') else c for c in row])
        encoding = "gbk" if self.fmt == "gbk" else "utf-8-sig"
        file = path.open("w", encoding=encoding, newline="")
        writer = csv.writer(file, lineterminator="\r\n")
        writer.writerow(header)
        self.closers.append(file.close)
        return writer.writerow

    def close(self) -> None:
        for close in self.closers:
            close()
