"""SMS copy: at most 70 characters, and the opt-out text."""

from __future__ import annotations

import pytest

from ecomflow.engine.rules.sms import check_sms

pytestmark = pytest.mark.db_independent

OPT_OUT = "回T退订"


class TestCheckSms:
    def test_short_text_with_opt_out_is_fine(self) -> None:
        assert check_sms("【小店】您的包裹已发出，请注意查收。回T退订", max_chars=70, opt_out=OPT_OUT) == []

    def test_exactly_the_limit_is_fine(self) -> None:
        text = "好" * 66 + OPT_OUT
        assert len(text) == 70
        assert check_sms(text, max_chars=70, opt_out=OPT_OUT) == []

    def test_one_character_over_the_limit_is_reported(self) -> None:
        text = "好" * 67 + OPT_OUT
        assert check_sms(text, max_chars=70, opt_out=OPT_OUT) == ["SMS is 71 characters; the limit is 70"]

    def test_missing_opt_out_is_reported(self) -> None:
        assert check_sms("您的包裹已发出", max_chars=70, opt_out=OPT_OUT) == [
            "SMS must carry the opt-out text '回T退订'"
        ]

    def test_both_problems_are_reported_together(self) -> None:
        assert check_sms("好" * 80, max_chars=70, opt_out=OPT_OUT) == [
            "SMS is 80 characters; the limit is 70",
            "SMS must carry the opt-out text '回T退订'",
        ]
