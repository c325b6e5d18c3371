"""SMS text facts: encodings, part counts at the 160/70 boundaries, unaccenting, fitting."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.smstext import fit, is_gsm7, segments, sms_units, split, unaccent

ALERT_VI = "Cảnh báo phóng xạ trạm Đông Triều"


# -- is_gsm7 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Canh bao 1.25 uSv/h",
        "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà",
        "€[]{}~^|\\\f",
        "a\r\nb",
    ],
)
def test_gsm7_texts(text: str) -> None:
    assert is_gsm7(text)


@pytest.mark.parametrize("text", [ALERT_VI, "µSv/h", "μSv/h", "đ", "`", "…", "\x1b", "\t", "😀"])
def test_non_gsm7_texts(text: str) -> None:
    assert not is_gsm7(text)


# -- segments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("gsm7", 1)),
        ("a" * 160, ("gsm7", 1)),
        ("a" * 161, ("gsm7", 2)),
        ("a" * 306, ("gsm7", 2)),
        ("a" * 307, ("gsm7", 3)),
        ("€" * 80, ("gsm7", 1)),  # 160 septets: each extension character costs two
        ("€" * 81, ("gsm7", 2)),
        ("[" + "a" * 158, ("gsm7", 1)),
        ("[" + "a" * 159, ("gsm7", 2)),
        ("ả" * 70, ("ucs2", 1)),
        ("ả" * 71, ("ucs2", 2)),
        ("ả" * 134, ("ucs2", 2)),
        ("ả" * 135, ("ucs2", 3)),
        ("😀" * 35, ("ucs2", 1)),  # astral: a surrogate pair, two UTF-16 code units
        ("😀" * 36, ("ucs2", 2)),
        ("a" * 69 + "đ", ("ucs2", 1)),
        ("a" * 70 + "đ", ("ucs2", 2)),
        ("µSv/h", ("ucs2", 1)),
    ],
)
def test_segments_boundaries(text: str, expected: tuple[str, int]) -> None:
    assert segments(text) == expected


def test_vietnamese_alert_is_ucs2() -> None:
    assert segments(ALERT_VI) == ("ucs2", 1)
    assert segments(ALERT_VI * 5) == ("ucs2", 3)  # 165 code units
    assert segments(unaccent(ALERT_VI * 5)) == ("gsm7", 2)


def test_split_never_cuts_an_escape_or_surrogate_pair() -> None:
    encoding, parts = split("a" * 152 + "€" + "b" * 10)  # "€" would straddle septets 153/154
    assert encoding == "gsm7"
    assert parts == ["a" * 152, "€" + "b" * 10]
    encoding, parts = split("a" * 66 + "😀" + "đ" * 10)  # the pair would straddle units 67/68
    assert encoding == "ucs2"
    assert parts == ["a" * 66, "😀" + "đ" * 10]


# -- unaccent, sms_units ----------------------------------------------------------------------


def test_unaccent_vietnamese() -> None:
    assert unaccent(ALERT_VI) == "Canh bao phong xa tram Dong Trieu"
    assert unaccent("Suất liều vượt ngưỡng ở Hạ Long, Quảng Ninh") == (
        "Suat lieu vuot nguong o Ha Long, Quang Ninh"
    )
    assert unaccent("ĂÂÊÔƠƯăâêôơư") == "AAEOOUaaeoou"


def test_unaccent_maps_d_with_stroke_by_hand() -> None:
    assert unicodedata.normalize("NFD", "đ") == "đ"  # why: NFD leaves it alone
    assert unaccent("đ Đ đường Điện Biên") == "d D duong Dien Bien"


def test_unaccent_replaces_other_characters_sensibly() -> None:
    assert unaccent("1,25 µSv/h – μGy “đo” ‘x’ …") == "1,25 uSv/h - uGy \"do\" 'x' ..."
    assert unaccent("a\tb\u00a0c\u200bd") == "a b cd"
    assert unaccent("giá trị ≥ 2") == "gia tri >= 2"
    assert unaccent("报警 😀") == "?? ?"
    assert unaccent("€ [ok] @ £") == "€ [ok] @ £"  # already GSM-7: kept


def test_sms_units() -> None:
    assert sms_units("1,25 µSv/h") == "1,25 uSv/h"
    assert sms_units("1,25 μSv/h và 3 µGy") == "1,25 uSv/h và 3 uGy"
    assert sms_units("0.2 μSv·h⁻¹") == "0.2 uSv/h"
    assert sms_units("µ alone") == "µ alone"
    assert segments(sms_units("Dose rate 1.25 µSv/h at Dong Trieu")) == ("gsm7", 1)


# -- fit --------------------------------------------------------------------------------------


def test_fit_leaves_short_text_alone() -> None:
    assert fit("a" * 160, 1) == "a" * 160
    assert fit(ALERT_VI, 1) == ALERT_VI


def test_fit_gsm7_ends_with_three_dots() -> None:
    text = "Canh bao phong xa tram Dong Trieu " * 10
    fitted = fit(text, 1)
    assert fitted.endswith("...")
    assert segments(fitted) == ("gsm7", 1)
    assert len(fitted) <= 160
    assert text.startswith(fitted[:-3])
    assert not fitted[:-3].endswith(" ")


def test_fit_ucs2_ends_with_ellipsis() -> None:
    text = ALERT_VI * 10
    fitted = fit(text, 2)
    assert fitted.endswith("…")
    assert segments(fitted) == ("ucs2", 2)
    assert text.startswith(fitted[:-1])
    assert segments(fit(text, 1)) == ("ucs2", 1)


def test_fit_rejects_zero_parts() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        fit("x", 0)


# -- properties -------------------------------------------------------------------------------

VIETNAMESE = st.text(
    alphabet=st.sampled_from("aăâbcdđeêghiklmnoôơpqrstuưvxyAĂÂĐÊÔƠƯ ảãạằẳẵặẩẫậẻẽẹểễệỉĩịỏõọ.,0123")
)
ANY_TEXT = st.one_of(st.text(max_size=400), VIETNAMESE, st.text(alphabet="a€[ đ😀", max_size=400))


@given(ANY_TEXT)
def test_unaccent_output_is_always_gsm7(text: str) -> None:
    assert is_gsm7(unaccent(text))


@given(ANY_TEXT, ANY_TEXT)
def test_segments_never_decrease_when_text_grows(text: str, more: str) -> None:
    assert segments(text + more)[1] >= segments(text)[1]
    assert segments(more + text)[1] >= segments(text)[1]


@given(ANY_TEXT)
def test_split_parts_join_to_the_text(text: str) -> None:
    encoding, parts = split(text)
    assert "".join(parts) == text
    assert segments(text) == (encoding, len(parts))


@given(ANY_TEXT, st.integers(min_value=1, max_value=4))
def test_fit_always_fits(text: str, max_parts: int) -> None:
    fitted = fit(text, max_parts)
    assert segments(fitted)[1] <= max_parts
    if segments(text)[1] <= max_parts:
        assert fitted == text
    else:
        assert fitted.endswith(("...", "…"))


def test_a_long_sms_lists_fewer_alarms_and_keeps_the_reply_and_the_link() -> None:
    # Cut from its end, the message lost "Trả lời OK…" and the link after the second alarm.
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from alerting.messages import Renderer
    from alerting.planner import Planned, Recipient
    from radmon.models import Alarm, Category, Severity, Station

    stations = {
        f"QN{i:03d}": Station(
            station_id=f"QN{i:03d}", name=f"Trạm quan trắc Khu công nghiệp số {i}", lat=21, lon=107
        )
        for i in range(8)
    }
    firing = [
        Alarm(
            id=100 + i,
            station_id=sid,
            kind="step",
            category=Category.RADIOLOGICAL,
            severity=Severity.ALERT,
            opened_at=datetime(2026, 12, 7, 3, i, tzinfo=UTC),
            peak_nsv_h=312.5,
            baseline_nsv_h=98.0,
        )
        for i, sid in enumerate(stations)
    ]
    renderer = Renderer(stations, ZoneInfo("Asia/Ho_Chi_Minh"), "https://radmon.example.vn", 3)
    planned = Planned("r", "g", Recipient("sms", "+84900000001", "Duty", "vi"), firing, set(), [])
    text = renderer.render(planned, "sms").text
    assert segments(text)[1] <= 3
    assert "Trả lời OK" in text and text.endswith("https://radmon.example.vn/alarms")
    assert "và 8 cảnh báo khác" in text  # three UCS-2 parts hold no alarm line of these
    roomy = Renderer(stations, ZoneInfo("Asia/Ho_Chi_Minh"), "https://radmon.example.vn", 6)
    text = roomy.render(planned, "sms").text
    assert segments(text)[1] <= 6 and text.endswith("https://radmon.example.vn/alarms")
    assert "#100" in text and "#101" in text and "cảnh báo khác" in text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (95.4, "95 nSv/h"),
        (999.4, "999 nSv/h"),
        (999.6, "1 uSv/h"),  # was "1000 nSv/h"
        (1234.5, "1,23 uSv/h"),
        (999_990.0, "1 mSv/h"),  # was "1e+03 uSv/h"
        (1.5e6, "1,5 mSv/h"),
    ],
)
def test_a_dose_takes_its_unit_after_rounding(value: float, text: str) -> None:
    from alerting.messages import dose

    assert dose(value, "vi") == text
