"""The image rules over what an upload measured: type, size, dimensions, square, white background, placement."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from ecomflow.engine.files.image_inspection import inspect_image
from ecomflow.engine.files.image_rules import FileFacts, check_file, white_share
from tests.images import picture

pytestmark = pytest.mark.db_independent

MAIN = {
    "accept": ("image/jpeg", "image/png"),
    "max_size": 3 * 1024 * 1024,
    "min_width": 800,
    "min_height": 800,
    "square": True,
    "white_background": {"level": 235, "share": 0.98},
}


def facts_of(data: bytes, tmp_path, name: str = "shot.jpg") -> FileFacts:
    path = tmp_path / name
    path.write_bytes(data)
    image = inspect_image(path, filename=name, max_pixels=10**8)
    kind = Image.open(io.BytesIO(data)).format.lower()
    return FileFacts(name, f"image/{kind}", len(data), image.width, image.height, image.border_histogram)


def rules(problems) -> list[str]:
    return [p.rule for p in problems]


class TestMainImages:
    def test_a_white_square_jpeg_passes(self, tmp_path) -> None:
        assert check_file(facts_of(picture(800, 800), tmp_path), MAIN, kind="image", path="m[0]", first=True) == []

    def test_a_grey_background_fails_only_as_the_first_image(self, tmp_path) -> None:
        grey = facts_of(picture(800, 800, background=(200, 200, 200)), tmp_path)
        [problem] = check_file(grey, MAIN, kind="image", path="m[0]", first=True)
        assert problem.rule == "white_background" and "m[0] (shot.jpg)" in problem.message
        assert check_file(grey, MAIN, kind="image", path="m[1]", first=False) == []

    def test_a_product_touching_the_border_is_not_on_white(self, tmp_path) -> None:
        image = Image.new("RGB", (800, 800), (255, 255, 255))
        image.paste((30, 30, 30), (0, 300, 800, 500))  # a dark band right across, edge to edge
        out = io.BytesIO()
        image.save(out, "PNG")
        facts = facts_of(out.getvalue(), tmp_path, "band.png")
        assert 0.8 < white_share(facts.border_histogram, 235) < 0.98
        assert rules(check_file(facts, MAIN, kind="image", path="m[0]", first=True)) == ["white_background"]

    def test_too_small_not_square_and_too_big_are_each_named(self, tmp_path) -> None:
        small = facts_of(picture(640, 480), tmp_path)
        assert rules(check_file(small, MAIN, kind="image", path="m[0]", first=False)) == [
            "min_width",
            "min_height",
            "square",
        ]
        heavy = FileFacts("heavy.jpg", "image/jpeg", 4 * 1024 * 1024, 1000, 1000, [0] * 255 + [10])
        [problem] = check_file(heavy, MAIN, kind="image", path="m[0]", first=False)
        assert problem.rule == "max_size" and problem.message == "m[0] (heavy.jpg) is 4 MB; at most 3 MB is allowed"

    def test_a_type_the_field_does_not_take_is_refused_alone(self) -> None:
        gif = FileFacts("anim.gif", "image/gif", 10, 900, 900)
        [problem] = check_file(gif, MAIN, kind="image", path="m[0]", first=True)
        assert problem.rule == "content_type" and "GIF image (image/gif)" in problem.message


class TestBanners:
    def test_a_banner_must_have_its_placements_size(self, tmp_path) -> None:
        attrs = {"accept": ("image/jpeg",), "size_by": {"field": "placement", "sizes": {"home_banner": (1920, 600)}}}
        banner = facts_of(picture(1920, 600), tmp_path)
        assert check_file(banner, attrs, kind="image", path="b", first=True, placement="home_banner") == []
        wrong = facts_of(picture(1200, 600), tmp_path)
        [problem] = check_file(wrong, attrs, kind="image", path="b", first=True, placement="home_banner")
        assert problem.rule == "placement_size" and "a home_banner image must be 1920×600" in problem.message
