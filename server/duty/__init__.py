"""Duty-log engine: shifts, rosters and punches in, duty records and findings out (pure, no I/O)."""

from server.duty.handover import handover_findings
from server.duty.records import FINDING_KINDS, PUNCH_TYPES, STATUSES, DutyRecord, Finding, Punch
from server.duty.rosters_csv import parse_roster_csv, parse_shifts_csv
from server.duty.rules import Assignment, assign_punches, duty_records, record_findings, unique_punches
from server.duty.shifts import RosterEntry, Shift, ShiftInstance, all_instances, instance, instances

__all__ = [
    "FINDING_KINDS",
    "PUNCH_TYPES",
    "STATUSES",
    "Assignment",
    "DutyRecord",
    "Finding",
    "Punch",
    "RosterEntry",
    "Shift",
    "ShiftInstance",
    "all_instances",
    "assign_punches",
    "duty_records",
    "handover_findings",
    "instance",
    "instances",
    "parse_roster_csv",
    "parse_shifts_csv",
    "record_findings",
    "unique_punches",
]
