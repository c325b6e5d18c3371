"""The words of a notification, in Vietnamese (the default) and English.

An SMS carries what the officer needs to act without opening anything: severity, station,
value against its background, local time, the alarm's number to answer ``OK 123`` with, and a
short link. It writes ``uSv/h`` (the micro sign alone would force UCS-2) and fits the parts
the configuration allows; a contact who wants it may get it without diacritics (160 characters
a part instead of 70).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from alerting import smstext
from alerting.planner import Planned
from radmon.models import Alarm, Station

SEVERITY = {
    "vi": {
        "info": "THÔNG TIN",
        "warning": "CẢNH BÁO",
        "alert": "BÁO ĐỘNG",
        "emergency": "KHẨN CẤP",
    },
    "en": {"info": "INFO", "warning": "WARNING", "alert": "ALERT", "emergency": "EMERGENCY"},
}
KIND = {
    "vi": {
        "dose_level": "vượt mức liều",
        "step": "tăng bậc",
        "transient": "nguồn đi qua",
        "regional_rise": "tăng cả vùng",
        "offline": "mất kết nối",
        "stuck": "số đo đứng yên",
        "out_of_range": "ngoài dải đo",
        "noise_change": "nhiễu thay đổi",
        "future_time": "sai giờ",
    },
    "en": {
        "dose_level": "dose level exceeded",
        "step": "step rise",
        "transient": "passing source",
        "regional_rise": "regional rise",
        "offline": "offline",
        "stuck": "stuck value",
        "out_of_range": "out of range",
        "noise_change": "noise changed",
        "future_time": "clock wrong",
    },
}
WORDS = {
    "vi": {
        "background": "nền",
        "stations": "trạm",
        "reply_one": "Trả lời OK {id} để xác nhận.",
        "reply_all": "Trả lời OK để xác nhận tất cả.",
        "cleared": "Đã hết",
        "more": "và {n} cảnh báo khác",
        "subject_group": "{n} cảnh báo",
    },
    "en": {
        "background": "bg",
        "stations": "stations",
        "reply_one": "Reply OK {id} to acknowledge.",
        "reply_all": "Reply OK to acknowledge all.",
        "cleared": "Cleared",
        "more": "and {n} more",
        "subject_group": "{n} alarms",
    },
}
PREFIX = "[RADMON]"


# Firing alarms told one by one in a message; the rest are counted ("and N more").
MAX_LISTED = 5


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    payload: dict[str, Any]


def dose(value: float | None, language: str) -> str:
    """A dose rate as people read it: nSv/h below 1 uSv/h, then uSv/h, then mSv/h."""
    if value is None:
        return "?"
    # the unit is chosen after rounding: 999.6 nSv/h is "1 uSv/h", not "1000 nSv/h", and
    # 999.99 uSv/h is "1 mSv/h", not "1e+03 uSv/h"
    text, unit = f"{value:.0f}", "nSv/h"
    rounded = float(f"{value:.3g}")
    for scale, name in ((1e6, "mSv/h"), (1e3, "uSv/h")):
        if rounded >= scale:
            text, unit = f"{rounded / scale:g}", name
            break
    return f"{text.replace('.', ',') if language == 'vi' else text} {unit}"


def local_time(moment: datetime, zone: tzinfo) -> str:
    local = moment.astimezone(zone)
    offset = local.utcoffset()
    hours = int(offset.total_seconds() // 3600) if offset else 0
    return f"{local:%H:%M %d/%m} (UTC{hours:+d})"


class Renderer:
    """Turns a planned notification into the text its channel carries."""

    def __init__(
        self,
        stations: Mapping[str, Station],
        zone: tzinfo,
        dashboard_url: str,
        max_sms_parts: int,
    ) -> None:
        self.stations = stations
        self.zone = zone
        self.base = dashboard_url.rstrip("/")
        self.max_sms_parts = max_sms_parts

    def link(self, alarm_id: int | None = None) -> str:
        return f"{self.base}/a/{alarm_id}" if alarm_id is not None else f"{self.base}/alarms"

    def _station(self, alarm: Alarm) -> str:
        station = self.stations.get(alarm.station_id)
        return f"{station.name} ({alarm.station_id})" if station else alarm.station_id

    def _line(self, alarm: Alarm, lang: str) -> str:
        kind = KIND[lang].get(alarm.kind, alarm.kind)
        base = ""
        if alarm.baseline_nsv_h is not None:  # unknown for a station without history yet
            base = f"({WORDS[lang]['background']} {dose(alarm.baseline_nsv_h, lang)}) "
        return (
            f"#{alarm.id} {self._station(alarm)} {kind} {dose(alarm.peak_nsv_h, lang)} "
            f"{base}{local_time(alarm.opened_at, self.zone)}"
        )

    def render(self, planned: Planned, kind: str) -> Rendered:
        """*kind*: the channel's kind (sms, email, webhook)."""
        lang = planned.recipient.language if planned.recipient.language in WORDS else "vi"
        if kind != "sms":
            text = "\n".join(self._lines(planned, lang, MAX_LISTED))
        else:
            # An SMS too long for max_sms_parts lists fewer alarms ("and N more"; none at the
            # last), so the reply instruction and the link at its end are not what is cut.
            firing = len(planned.firing)
            for listed in range(min(MAX_LISTED, firing), -1 if firing > 1 else 0, -1) or [0]:
                text = self._sms(planned, lang, listed)
                if smstext.segments(text)[1] <= self.max_sms_parts:
                    break
            text = smstext.fit(text, self.max_sms_parts)
        subject = self._subject(planned, lang)
        return Rendered(subject, text, self._payload(planned, text, subject))

    def _sms(self, planned: Planned, lang: str, listed: int) -> str:
        text = smstext.sms_units(" ".join(self._lines(planned, lang, listed)))
        return smstext.unaccent(text) if planned.recipient.unaccented else text

    def _lines(self, planned: Planned, lang: str, listed: int) -> list[str]:
        """The message's lines, the first *listed* firing alarms told one by one."""
        words = WORDS[lang]
        lines: list[str] = []
        if planned.firing:
            top = planned.firing[0]
            head = f"{PREFIX} {SEVERITY[lang][top.severity.value]}"
            if len(planned.firing) == 1:
                lines.append(f"{head}: {self._line(top, lang)}.")
                lines.append(words["reply_one"].format(id=top.id))
                link = self.link(top.id)
            else:
                count = len({a.station_id for a in planned.firing})
                lines.append(f"{head}: {count} {words['stations']}.")
                lines.extend(self._line(a, lang) + ";" for a in planned.firing[:listed])
                if len(planned.firing) > listed:
                    lines.append(words["more"].format(n=len(planned.firing) - listed) + ".")
                lines.append(words["reply_all"])
                link = self.link()
        else:
            head = f"{PREFIX} {words['cleared']}"
            link = self.link()
        if planned.cleared:
            ids = ", ".join(f"#{a.id} {a.station_id}" for a in planned.cleared)
            lines.append(f"{words['cleared'] if planned.firing else head}: {ids}.")
        lines.append(link)
        return lines

    def _subject(self, planned: Planned, lang: str) -> str:
        if not planned.firing:
            return f"{PREFIX} {WORDS[lang]['cleared']}"
        top = planned.firing[0]
        severity = SEVERITY[lang][top.severity.value]
        if len(planned.firing) == 1:
            return f"{PREFIX} {severity}: {self._station(top)} {dose(top.peak_nsv_h, lang)}"
        return f"{PREFIX} {severity}: {WORDS[lang]['subject_group'].format(n=len(planned.firing))}"

    def _payload(self, planned: Planned, text: str, subject: str) -> dict[str, Any]:
        def item(alarm: Alarm) -> dict[str, Any]:
            station = self.stations.get(alarm.station_id)
            return {
                "id": alarm.id,
                "station_id": alarm.station_id,
                "station_name": station.name if station else None,
                "kind": alarm.kind,
                "category": alarm.category.value,
                "severity": alarm.severity.value,
                "state": alarm.state.value,
                "opened_at": alarm.opened_at.isoformat(),
                "peak_nsv_h": alarm.peak_nsv_h,
                "baseline_nsv_h": alarm.baseline_nsv_h,
                "new": alarm.id in planned.news,
                "url": self.link(alarm.id),
            }

        return {
            "version": 1,
            "route": planned.route,
            "group": planned.group_key,
            "firing": [item(a) for a in planned.firing],
            "cleared": [item(a) for a in planned.cleared],
            "subject": subject,
            "text": text,
        }
