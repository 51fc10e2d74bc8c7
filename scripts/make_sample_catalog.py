"""Write src/ecomflow/sample_catalog.csv: the demo's catalogue (30 products, ~150 variants, 3 locations).

Deterministic: run it again and the file is the same. `ecomflow demo` imports it through
`ecomflow catalog import`'s path.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "ecomflow" / "sample_catalog.csv"
LOCATIONS = ["WH-ONLINE", "ST-SH01", "ST-HZ01"]
# code, title, category, brand, online_only, list price, colours, sizes
PRODUCTS = [
    ("TEE", "纯棉圆领T恤", "T恤", "棉言", False, 199, ["白色", "黑色", "灰色"], ["S", "M", "L", "XL"]),
    ("POLO", "珠地棉POLO衫", "POLO衫", "棉言", False, 259, ["藏青", "白色"], ["M", "L", "XL"]),
    ("SHIRT-OX", "牛津纺长袖衬衫", "衬衫", "棉言", False, 299, ["浅蓝", "白色"], ["S", "M", "L", "XL"]),
    ("SHIRT-LIN", "亚麻休闲衬衫", "衬衫", "棉言", False, 329, ["米色", "卡其"], ["M", "L", "XL"]),
    ("JEANS-ST", "直筒牛仔裤", "牛仔裤", "蓝调", False, 329, ["深蓝", "浅蓝"], ["29", "30", "31", "32", "33"]),
    ("JEANS-SL", "修身弹力牛仔裤", "牛仔裤", "蓝调", False, 359, ["黑色"], ["28", "29", "30", "31", "32"]),
    ("CHINO", "免烫休闲长裤", "休闲裤", "棉言", False, 279, ["卡其", "藏青"], ["29", "30", "31", "32"]),
    ("JOGGER", "束脚运动卫裤", "卫裤", "动起来", False, 239, ["灰色", "黑色"], ["M", "L", "XL"]),
    ("HOODIE", "加绒连帽卫衣", "卫衣", "动起来", False, 349, ["灰色", "黑色", "酒红"], ["M", "L", "XL"]),
    ("CREW", "圆领套头卫衣", "卫衣", "动起来", False, 299, ["燕麦", "黑色"], ["M", "L", "XL"]),
    ("KNIT", "羊毛混纺针织衫", "针织衫", "暖冬", False, 459, ["驼色", "灰色"], ["M", "L", "XL"]),
    ("CARDI", "开衫毛衣外套", "针织衫", "暖冬", False, 499, ["米白", "藏青"], ["S", "M", "L"]),
    ("DOWN-S", "轻薄短款羽绒服", "羽绒服", "暖冬", False, 699, ["黑色", "军绿"], ["M", "L", "XL"]),
    ("DOWN-L", "连帽长款羽绒服", "羽绒服", "暖冬", False, 1299, ["黑色", "卡其"], ["M", "L", "XL"]),
    ("JACKET", "防风夹克", "夹克", "动起来", False, 459, ["黑色", "藏青"], ["M", "L", "XL"]),
    ("COAT", "双面呢大衣", "大衣", "暖冬", False, 1599, ["驼色", "黑色"], ["S", "M", "L"]),
    ("DRESS", "碎花连衣裙", "连衣裙", "花间", False, 399, ["蓝色碎花", "黄色碎花"], ["S", "M", "L"]),
    ("SKIRT", "高腰半身裙", "半身裙", "花间", False, 259, ["黑色", "卡其"], ["S", "M", "L"]),
    ("SOCKS", "精梳棉中筒袜 (5双装)", "袜子", "棉言", False, 59, ["混色"], ["均码"]),
    ("CAP", "纯棉棒球帽", "帽子", "动起来", False, 99, ["黑色", "白色", "卡其"], ["均码"]),
    ("TOTE", "帆布托特包", "包袋", "棉言", False, 129, ["米白", "黑色"], ["均码"]),
    ("SCARF", "羊绒围巾", "围巾", "暖冬", False, 399, ["驼色", "灰色", "酒红"], ["均码"]),
    ("BELT", "头层牛皮腰带", "配饰", "蓝调", False, 199, ["棕色", "黑色"], ["105cm", "115cm"]),
    ("KEYRING", "品牌金属钥匙扣 (赠品)", "配饰", "棉言", False, 29, ["银色"], ["均码"]),
    ("TEE-NET", "网络专供 速干T恤", "T恤", "动起来", True, 129, ["黑色", "蓝色"], ["M", "L", "XL"]),
    ("SET-NET", "网络专供 家居服套装", "家居服", "棉言", True, 259, ["灰色", "粉色"], ["M", "L"]),
    ("LEGGINGS", "高弹瑜伽裤", "运动裤", "动起来", False, 219, ["黑色", "灰色"], ["S", "M", "L"]),
    ("SHORTS", "速干运动短裤", "运动裤", "动起来", False, 149, ["黑色", "藏青"], ["M", "L", "XL"]),
    ("VEST", "轻羽绒马甲", "羽绒服", "暖冬", False, 399, ["黑色"], ["M", "L", "XL"]),
    ("GLOVES", "触屏针织手套", "配饰", "暖冬", False, 79, ["灰色", "黑色"], ["均码"]),
]
COLOUR_CODES = {
    "白色": "WHT", "黑色": "BLK", "灰色": "GRY", "藏青": "NVY", "浅蓝": "LBL", "米色": "BEI", "卡其": "KHA",
    "深蓝": "DBL", "酒红": "WIN", "燕麦": "OAT", "驼色": "CAM", "米白": "IVY", "军绿": "OLV", "蓝色碎花": "BFL",
    "黄色碎花": "YFL", "混色": "MIX", "棕色": "BRN", "银色": "SLV", "蓝色": "BLU", "粉色": "PNK",
}  # fmt: skip


def rows() -> list[list[object]]:
    """Return the catalogue's rows, one per variant."""
    rng = random.Random(20261205)
    out = []
    for number, (code, title, category, brand, online_only, price, colours, sizes) in enumerate(PRODUCTS, start=1):
        for colour in colours:
            for size in sizes:
                sku = f"{code}-{COLOUR_CODES[colour]}-{size.replace('均码', 'F')}"
                barcode = f"69{number:03d}{len(out):07d}"
                stock = [rng.randint(20, 300)] + ([0, 0] if online_only else [rng.randint(0, 40), rng.randint(0, 40)])
                out.append([code, title, category, brand, "yes" if online_only else "no", sku, colour, size, barcode,
                            price, *stock])  # fmt: skip
    return out


def main() -> None:
    header = ["product_code", "title", "category", "brand", "online_only", "sku", "colour", "size", "barcode"]
    header += ["list_price", *(f"stock@{loc}" for loc in LOCATIONS)]
    with OUT.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
