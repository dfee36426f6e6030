"""Pure: CronJob schedules (the standard 5-field cron syntax that robfig/cron's ParseStandard reads).

Rules kept here:
- Fields: minute 0-59, hour 0-23, day of month 1-31, month 1-12 (or jan-dec), day of week 0-6
  (or sun-sat; 7 is Sunday too). Each field is a comma list of ``*`` / ``?``, ``N``, ``N-M``, each with
  an optional ``/step`` (``N/step`` means ``N-max/step``).
- Descriptors: ``@yearly`` / ``@annually``, ``@monthly``, ``@weekly``, ``@daily`` / ``@midnight``,
  ``@hourly``. ``@every`` and ``TZ=`` prefixes are refused (use ``spec.timeZone``).
- Day of month and day of week: when both are restricted (neither starts with ``*``/``?``), a day
  matching either runs (cron's OR rule); otherwise both must match.
- ``next_after(t)``: the first whole minute strictly after ``t`` that matches, in the schedule's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
# (name, low, high, names)
FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}), ("month", 1, 12, MONTHS),
          ("day of week", 0, 7, DAYS))


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    dom_star: bool
    dow_star: bool

    def matches(self, t: datetime) -> bool:
        if t.minute not in self.minutes or t.hour not in self.hours or t.month not in self.months:
            return False
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next_after(self, t: datetime, zone: tzinfo | None = None) -> datetime | None:
        """The first matching minute after ``t`` (None when there is none within five years)."""
        local = t.astimezone(zone) if zone is not None else t
        cur = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
        end = cur + timedelta(days=366 * 5)
        while cur < end:
            if cur.month not in self.months:
                cur = _first_of_next_month(cur)
                continue
            if not self._day_ok(cur):
                cur = (cur + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if cur.hour not in self.hours:
                cur = (cur + timedelta(hours=1)).replace(minute=0)
                continue
            if cur.minute not in self.minutes:
                cur += timedelta(minutes=1)
                continue
            if zone is not None:  # wall-clock arithmetic across a DST change: re-anchor in the zone
                cur = cur.replace(tzinfo=None).replace(tzinfo=zone)
            return cur
        return None

    def _day_ok(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow


def _first_of_next_month(t: datetime) -> datetime:
    if t.month == 12:
        return t.replace(year=t.year + 1, month=1, day=1, hour=0, minute=0)
    return t.replace(month=t.month + 1, day=1, hour=0, minute=0)


def _number(text: str, names: dict[str, int], what: str) -> int:
    low = text.lower()
    if low in names:
        return names[low]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}: strconv.Atoi: parsing {text!r}: invalid syntax"
                        if not names else f"failed to parse {what} {text!r}")
    return int(text)


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"empty {name} field in {text!r}")
        rng, _, step_text = part.partition("/")
        step = 1
        if step_text or "/" in part:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"invalid step {step_text!r} in {part!r}")
            step = int(step_text)
        if rng in ("*", "?"):
            a, b = low, high
        elif "-" in rng:
            x, _, y = rng.partition("-")
            a, b = _number(x, names, name), _number(y, names, name)
        else:
            a = _number(rng, names, name)
            b = high if "/" in part else a
        if a < low or b > high:
            raise CronError(f"end of range ({b if b > high else a}) above maximum ({high}): {part}" if b > high
                            else f"beginning of range ({a}) below minimum ({low}): {part}")
        if a > b:
            raise CronError(f"beginning of range ({a}) beyond end of range ({b}): {part}")
        out.update(range(a, b + 1, step))
    return out


def parse(text: str) -> Schedule:
    """Parse a CronJob schedule; CronError with a message for anything else."""
    s = " ".join(str(text).split())
    if not s:
        raise CronError("empty spec string")
    if s.startswith(("TZ=", "CRON_TZ=")):
        raise CronError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if s.startswith("@"):
        if s.lower() not in DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {s}")
        s = DESCRIPTORS[s.lower()]
    parts = s.split(" ")
    if len(parts) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(parts)}: [{' '.join(parts)}]")
    sets = [_field(p, *f) for p, f in zip(parts, FIELDS, strict=True)]
    weekdays = sets[4]
    if 7 in weekdays:
        weekdays = (weekdays - {7}) | {0}
    return Schedule(frozenset(sets[0]), frozenset(sets[1]), frozenset(sets[2]), frozenset(sets[3]),
                    frozenset(weekdays), parts[2] in ("*", "?") or parts[2].startswith(("*", "?")),
                    parts[4] in ("*", "?") or parts[4].startswith(("*", "?")))


def unmet(schedule: Schedule, earliest: datetime, now: datetime, zone: tzinfo | None = None,
          limit: int = 100) -> tuple[datetime | None, int]:
    """(the most recent schedule time in (earliest, now], how many there were, counting up to ``limit`` + 1)."""
    last: datetime | None = None
    n = 0
    t = schedule.next_after(earliest, zone)
    while t is not None and t <= now:
        last, n = t, n + 1
        if n > limit:
            # too many to walk one by one: jump close to now and find the last one from there
            t = schedule.next_after(now - timedelta(days=1) if now - timedelta(days=1) > t else t, zone)
            while t is not None and t <= now:
                last = t
                t = schedule.next_after(t, zone)
            break
        t = schedule.next_after(t, zone)
    return last, n
