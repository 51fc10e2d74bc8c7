"""The platforms' bulk-upload files of a published listing: 淘宝助理/千牛 CSV for Taobao/Tmall, an XLSX for JD.

淘宝助理's CSV, as the tool itself writes and reads it: UTF-16 little-endian with a byte-order mark, fields
separated by tabs, CRLF lines; line 1 `version 1.00`, line 2 the field names, line 3 their Chinese titles,
then one line per 宝贝. Its per-SKU column (skuProps) holds `price:quantity:商家编码:` entries; the category's
property ids (pid:vid, cateProps) are the platform's own and are picked in the tool, as is the numeric cid
when the listing names its 类目 in words.

JD's bulk template is the one its merchant backend hands out per category; the columns here are the fields of
JD's ware API (jingdong.ware.write.add) under their Chinese names, one row per SKU, the API name in row 2.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from openpyxl import Workbook

TAOBAO_VERSION_LINE = "version 1.00"
TAOBAO_FIELDS = [
    "title",
    "cid",
    "seller_cids",
    "stuff_status",
    "location_state",
    "location_city",
    "item_type",
    "price",
    "auction_increment",
    "num",
    "valid_thru",
    "freight_payer",
    "post_fee",
    "ems_fee",
    "express_fee",
    "has_invoice",
    "has_warranty",
    "approve_status",
    "has_showcase",
    "list_time",
    "description",
    "cateProps",
    "postage_id",
    "has_discount",
    "modified",
    "upload_fail_msg",
    "picture_status",
    "auction_point",
    "picture",
    "video",
    "skuProps",
    "inputPids",
    "inputValues",
    "outer_id",
    "propAlias",
    "auto_fill",
    "num_id",
    "local_cid",
    "navigation_type",
    "user_name",
    "syncStatus",
    "is_lighting_consigment",
    "is_xinpin",
    "foodparame",
    "features",
    "buyareatype",
    "global_stock_type",
    "global_stock_country",
    "sub_stock_type",
    "item_size",
    "item_weight",
    "sell_promise",
    "custom_design_flag",
    "wireless_desc",
    "barcode",
    "sku_barcode",
    "newprepay",
    "subtitle",
    "cpv_memo",
    "input_custom_cpv",
    "qualification",
    "add_qualification",
    "o2o_bind_service",
]
TAOBAO_TITLES = [
    "宝贝名称",
    "宝贝类目",
    "店铺类目",
    "新旧程度",
    "省",
    "城市",
    "出售方式",
    "宝贝价格",
    "加价幅度",
    "宝贝数量",
    "有效期",
    "运费承担",
    "平邮",
    "EMS",
    "快递",
    "发票",
    "保修",
    "放入仓库",
    "橱窗推荐",
    "开始时间",
    "宝贝描述",
    "宝贝属性",
    "邮费模版ID",
    "会员打折",
    "修改时间",
    "上传状态",
    "图片状态",
    "返点比例",
    "新图片",
    "视频",
    "销售属性组合",
    "用户输入ID串",
    "用户输入名-值对",
    "商家编码",
    "销售属性别名",
    "代充类型",
    "数字ID",
    "本地ID",
    "宝贝分类",
    "用户名称",
    "宝贝状态",
    "闪电发货",
    "新品",
    "食品专项",
    "尺码库",
    "采购地",
    "库存类型",
    "国家地区",
    "库存计数",
    "物流体积",
    "物流重量",
    "退换货承诺",
    "定制工具",
    "无线详情",
    "商品条形码",
    "sku 条形码",
    "7天退货",
    "宝贝卖点",
    "属性值备注",
    "自定义属性值",
    "商品资质",
    "增加商品资质",
    "关联线下服务",
]
# stuff_status 1: 全新 (new goods).
NEW_GOODS = "1"

# (Chinese column title, JD ware API field) of the JD file, in order.
JD_COLUMNS = (
    ("商品名称", "title"),
    ("类目", "categoryId"),
    ("商家商品编码", "wareOuterId"),
    ("运费模板", "transportId"),
    ("商家SKU编码", "outerId"),
    ("销售属性", "saleAttrs"),
    ("京东价", "jdPrice"),
    ("库存", "stockNum"),
    ("主图", "imgUrl"),
)
JD_SHEET = "商品"
CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class ListedSku:
    """One variant as it goes live: its code (商家编码), its words (红色/XL), its online price and stock."""

    sku: str
    spec: str
    price: Decimal
    stock: int


@dataclass(frozen=True)
class ListingFile:
    """What a bulk-upload file carries of a listing."""

    code: str
    title: str
    category: str
    shipping_template: str
    go_live_at: str
    skus: Sequence[ListedSku]
    image_urls: Sequence[str]


def taobao_csv(listing: ListingFile) -> bytes:
    """Return the listing as one 宝贝 of a 淘宝助理/千牛 CSV (UTF-16LE with BOM, tab-separated)."""
    values = {
        "title": listing.title,
        "cid": listing.category,
        "stuff_status": NEW_GOODS,
        # The 宝贝's price is its lowest SKU price, as the platform shows it.
        "price": str(min(sku.price for sku in listing.skus)),
        "num": str(sum(sku.stock for sku in listing.skus)),
        "list_time": listing.go_live_at,
        "postage_id": listing.shipping_template,
        "picture": "".join(f":1:{index}:|{url};" for index, url in enumerate(listing.image_urls)),
        "skuProps": "".join(f"{sku.price}:{sku.stock}:{sku.sku}:;" for sku in listing.skus),
        "outer_id": listing.code,
    }
    text = io.StringIO()
    text.write(TAOBAO_VERSION_LINE + "\r\n")
    writer = csv.writer(text, delimiter="\t", lineterminator="\r\n")
    writer.writerow(TAOBAO_FIELDS)
    writer.writerow(TAOBAO_TITLES)
    writer.writerow([values.get(name, "") for name in TAOBAO_FIELDS])
    return b"\xff\xfe" + text.getvalue().encode("utf-16-le")


def jd_xlsx(listing: ListingFile) -> bytes:
    """Return the listing as JD bulk-upload rows: Chinese titles, then API field names, then one row per SKU."""
    book = Workbook()
    sheet = book.active
    sheet.title = JD_SHEET
    sheet.append([title for title, _ in JD_COLUMNS])
    sheet.append([name for _, name in JD_COLUMNS])
    main_image = listing.image_urls[0] if listing.image_urls else ""
    for sku in listing.skus:
        # Prices and codes stay text: a spreadsheet must not turn 0012 into 12 or 89.90 into 89.9.
        sheet.append(
            [
                listing.title,
                listing.category,
                listing.code,
                listing.shipping_template,
                sku.sku,
                sku.spec,
                str(sku.price),
                sku.stock,
                main_image,
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
