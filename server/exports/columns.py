"""The export's columns in English and Chinese, and the typed values of each row (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from server.exports.rows import AttendanceRow, GuardTotals

LOCALES = ("zh", "en")


@dataclass(frozen=True)
class Column:
    key: str
    en: str
    zh: str
    width: int  # characters, for XLSX
    kind: str = "text"  # text, date, time, number

    def header(self, locale: str) -> str:
        return self.zh if locale == "zh" else self.en


ROW_COLUMNS = (
    Column("date", "Date", "日期", 11, "date"),
    Column("guard_id", "Guard ID", "保安员编号", 12),
    Column("name", "Name", "姓名", 14),
    Column("id_number_masked", "Resident ID (masked)", "身份证号（脱敏）", 21),
    Column("certificate", "Certificate", "保安员证", 11),
    Column("employer", "Employer", "用人单位", 22),
    Column("site_id", "Site ID", "驻勤点编号", 14),
    Column("site", "Site", "驻勤点", 20),
    Column("tz", "Time zone", "时区", 15),
    Column("post", "Post", "岗位", 14),
    Column("shift", "Shift", "班次", 12),
    Column("scheduled_start", "Scheduled start", "计划上岗", 17, "time"),
    Column("scheduled_end", "Scheduled end", "计划下岗", 17, "time"),
    Column("first_in", "First in", "首次签到", 17, "time"),
    Column("last_out", "Last out", "最后签退", 17, "time"),
    Column("status", "Status", "考勤状态", 16),
    Column("minutes_worked", "Minutes worked", "工作分钟", 10, "number"),
    Column("late_minutes", "Late minutes", "迟到分钟", 10, "number"),
    Column("early_leave_minutes", "Early-leave minutes", "早退分钟", 10, "number"),
    Column("overtime_minutes", "Overtime minutes", "加班分钟", 10, "number"),
    Column("check_in_method", "Check-in method", "签到方式", 12),
    Column("corrected", "Corrected", "已更正", 9),
)

TOTAL_COLUMNS = (
    Column("guard_id", "Guard ID", "保安员编号", 12),
    Column("name", "Name", "姓名", 14),
    Column("id_number_masked", "Resident ID (masked)", "身份证号（脱敏）", 21),
    Column("employer", "Employer", "用人单位", 22),
    Column("days_rostered", "Days rostered", "排班天数", 10, "number"),
    Column("days_present", "Days present", "出勤天数", 10, "number"),
    Column("days_late", "Days late", "迟到天数", 10, "number"),
    Column("days_early_leave", "Days with early leave", "早退天数", 10, "number"),
    Column("days_absent", "Days absent", "缺勤天数", 10, "number"),
    Column("days_missing_punch", "Days with a missing punch", "缺卡天数", 10, "number"),
    Column("days_unscheduled", "Days on site unscheduled", "非排班到岗天数", 10, "number"),
    Column("corrected_records", "Corrected records", "更正记录数", 10, "number"),
    Column("minutes_worked", "Minutes worked", "工作分钟", 10, "number"),
    Column("late_minutes", "Late minutes", "迟到分钟", 10, "number"),
    Column("early_leave_minutes", "Early-leave minutes", "早退分钟", 10, "number"),
    Column("overtime_minutes", "Overtime minutes", "加班分钟", 10, "number"),
)

STATUS_LABELS = {
    "present": ("Present", "正常"),
    "late": ("Late", "迟到"),
    "early_leave": ("Early leave", "早退"),
    "late_and_early_leave": ("Late and early leave", "迟到且早退"),
    "absent": ("Absent", "缺勤"),
    "missing_check_in": ("Missing check-in", "缺签到"),
    "missing_check_out": ("Missing check-out", "缺签退"),
    "unscheduled": ("On site, not rostered", "非排班到岗"),
    "in_progress": ("In progress", "进行中"),
    "no_duty": ("No duty", "无排班"),
}
CERTIFICATE_LABELS = {"valid": ("valid", "有效"), "expired": ("expired", "已过期"), "missing": ("missing", "无证")}
METHOD_LABELS = {"face": ("face", "人脸"), "card": ("card", "刷卡"), "face+card": ("face+card", "人脸+刷卡")}
YES_NO = {True: ("yes", "是"), False: ("no", "否")}

Value = str | int | date | datetime | None


def _label(labels: dict, key, locale: str) -> str:
    pair = labels.get(key)
    if pair is None:
        return str(key)  # a code added later still shows, untranslated
    return pair[1] if locale == "zh" else pair[0]


def headers(columns: tuple[Column, ...], locale: str) -> list[str]:
    return [column.header(locale) for column in columns]


def row_values(row: AttendanceRow, locale: str) -> list[Value]:
    """The row's cells in ROW_COLUMNS order: dates and times as values, codes as words of ``locale``."""
    words = {
        "status": _label(STATUS_LABELS, row.status, locale),
        "certificate": _label(CERTIFICATE_LABELS, row.certificate, locale),
        "check_in_method": _label(METHOD_LABELS, row.check_in_method, locale) if row.check_in_method else "",
        "corrected": _label(YES_NO, row.corrected, locale),
    }
    return [words[c.key] if c.key in words else getattr(row, c.key) for c in ROW_COLUMNS]


def total_values(totals: GuardTotals) -> list[Value]:
    return [getattr(totals, column.key) for column in TOTAL_COLUMNS]
