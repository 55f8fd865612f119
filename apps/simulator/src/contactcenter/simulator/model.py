"""The traffic model, pure: no I/O, no wall clock, every random draw from a seeded `Random`.

- `SimClock` maps simulated time to wall-clock seconds with a speed-up factor.
- `DailyCurve` gives the share of a day's contacts in each 30-minute interval of the site's day.
- `ArrivalModel` draws customers per channel: a Poisson process whose rate is constant within
  each interval (count ~ Poisson(rate x length), times uniform inside), with intent (-> skill),
  language, priority (VIP), patience and the customer's address.
- `HandlingModel` draws handle and wrap-up times (log-normal, per channel).
- `Roster` builds agents in several time zones with skills, languages and channels, and their
  shifts with breaks and lunch, as UTC activity blocks for any simulated day.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

INTERVAL = timedelta(minutes=30)
INTERVALS_PER_DAY = 48


class Channel(StrEnum):
    VOICE = "voice"
    CHAT = "chat"
    EMAIL = "email"
    SMS = "sms"


#: Channels a customer waits on in real time (and abandons when out of patience).
LIVE_CHANNELS = frozenset({Channel.VOICE, Channel.CHAT})


# ---------------------------------------------------------------------------------------------
# Clock
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimClock:
    """Simulated time `sim_start` happens at wall-clock second `wall_start` (a monotonic
    reading); simulated time then runs `speed` times faster than the wall clock."""

    sim_start: datetime
    wall_start: float
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.sim_start.tzinfo is None:
            raise ValueError("sim_start must be timezone-aware")
        if not self.speed > 0:
            raise ValueError("speed must be > 0")

    def sim_at(self, wall: float) -> datetime:
        return self.sim_start + timedelta(seconds=(wall - self.wall_start) * self.speed)

    def wall_at(self, sim: datetime) -> float:
        return self.wall_start + (sim - self.sim_start).total_seconds() / self.speed

    def wall_seconds(self, sim_seconds: float) -> float:
        """How long a simulated duration lasts on the wall clock."""
        return sim_seconds / self.speed


# ---------------------------------------------------------------------------------------------
# Arrivals
# ---------------------------------------------------------------------------------------------

# A typical inbound day in the site's local time: quiet night, morning ramp, a late-morning peak,
# a lunch dip, a smaller afternoon peak, an evening tail. Relative weights per hour (0..23).
_HOURLY_SHAPE = (
    0.05, 0.03, 0.02, 0.02, 0.03, 0.08, 0.20, 0.45, 0.80, 0.98, 1.00, 0.95,
    0.80, 0.85, 0.92, 0.88, 0.75, 0.60, 0.45, 0.35, 0.25, 0.18, 0.12, 0.08,
)  # fmt: skip


@dataclass(frozen=True)
class DailyCurve:
    """Relative arrival intensity per 30-minute interval of the local day; the peak is 1.0."""

    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.weights) != INTERVALS_PER_DAY:
            raise ValueError(f"a daily curve has {INTERVALS_PER_DAY} intervals")
        if any(w < 0 or math.isnan(w) for w in self.weights) or max(self.weights) <= 0:
            raise ValueError("curve weights must be >= 0 with a positive peak")

    @classmethod
    def typical(cls) -> DailyCurve:
        halves: list[float] = []
        for hour, w in enumerate(_HOURLY_SHAPE):
            nxt = _HOURLY_SHAPE[(hour + 1) % 24]
            halves += [w, (w + nxt) / 2]
        peak = max(halves)
        return cls(tuple(w / peak for w in halves))

    @classmethod
    def flat(cls) -> DailyCurve:
        return cls((1.0,) * INTERVALS_PER_DAY)

    def factor(self, local: datetime) -> float:
        return self.weights[local.hour * 2 + local.minute // 30]


@dataclass(frozen=True)
class Intent:
    name: str
    skill: str
    weight: float


INTENTS: tuple[Intent, ...] = (
    Intent("support.general", "support", 0.5),
    Intent("billing.question", "billing", 0.3),
    Intent("sales.new_order", "sales", 0.2),
)
LANGUAGES: tuple[tuple[str, float], ...] = (("en", 0.6), ("es", 0.2), ("fr", 0.1), ("de", 0.1))


@dataclass(frozen=True)
class Arrival:
    """One customer contact as it reaches the contact center."""

    at: datetime
    channel: Channel
    intent: str
    skill: str
    min_proficiency: int
    language: str
    priority: int
    #: Simulated seconds the customer waits before hanging up (None: never abandons).
    patience_s: float | None
    customer_address: str
    seq: int


@dataclass(frozen=True)
class ChannelProfile:
    #: Patience: mean of an exponential (simulated seconds); None for asynchronous channels.
    mean_patience_s: float | None
    #: Handle time: mean and sigma of the underlying normal of a log-normal.
    mean_handle_s: float
    handle_sigma: float
    mean_wrap_up_s: float


CHANNEL_PROFILES: Mapping[Channel, ChannelProfile] = {
    Channel.VOICE: ChannelProfile(120.0, 300.0, 0.5, 30.0),
    Channel.CHAT: ChannelProfile(240.0, 420.0, 0.6, 20.0),
    Channel.EMAIL: ChannelProfile(None, 240.0, 0.7, 30.0),
    Channel.SMS: ChannelProfile(None, 180.0, 0.6, 10.0),
}


def _weighted(rng: random.Random, options: Sequence[tuple[str, float]]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, a normal approximation above 500)."""
    if mean < 0:
        raise ValueError("mean must be >= 0")
    if mean == 0:
        return 0
    if mean > 500:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclass
class ArrivalModel:
    """Customers per channel. `peak_per_hour[channel]` is the arrival rate (contacts per
    simulated hour) at the curve's peak; the site's time zone places the curve."""

    peak_per_hour: Mapping[Channel, float]
    rng: random.Random
    curve: DailyCurve = field(default_factory=DailyCurve.typical)
    site_tz: str = "UTC"
    vip_share: float = 0.05
    _seq: int = 0

    def __post_init__(self) -> None:
        for channel, rate in self.peak_per_hour.items():
            if rate < 0 or math.isnan(rate):
                raise ValueError(f"rate of {channel} must be >= 0")
        self._tz = ZoneInfo(self.site_tz)

    def rate_per_hour(self, channel: Channel, at: datetime) -> float:
        return self.peak_per_hour.get(channel, 0.0) * self.curve.factor(at.astimezone(self._tz))

    def between(self, start: datetime, end: datetime) -> list[Arrival]:
        """Every arrival in [start, end), in time order. Consecutive windows draw independent
        counts, so calling window after window is one Poisson process."""
        arrivals: list[Arrival] = []
        for seg_start, seg_end in _segments(start, end):
            seconds = (seg_end - seg_start).total_seconds()
            for channel in sorted(self.peak_per_hour):
                mean = self.rate_per_hour(channel, seg_start) * seconds / 3600.0
                for _ in range(poisson(self.rng, mean)):
                    at = seg_start + timedelta(seconds=self.rng.random() * seconds)
                    arrivals.append(self._customer(at, channel))
        arrivals.sort(key=lambda a: (a.at, a.seq))
        return arrivals

    def _customer(self, at: datetime, channel: Channel) -> Arrival:
        rng = self.rng
        intent = rng.choices(INTENTS, weights=[i.weight for i in INTENTS])[0]
        language = _weighted(rng, LANGUAGES)
        vip = rng.random() < self.vip_share
        profile = CHANNEL_PROFILES[channel]
        patience = (
            None
            if profile.mean_patience_s is None
            else rng.expovariate(1.0 / profile.mean_patience_s) * (2.0 if vip else 1.0)
        )
        self._seq += 1
        n = rng.randrange(10_000_000)
        if channel is Channel.EMAIL:
            address = f"customer{n:07d}@example.com"
        elif channel is Channel.CHAT:
            address = f"chat-{n:07d}"
        else:
            # 555 numbers of a real area code: valid, reserved for fiction (10,000 callers).
            address = f"+1201555{n % 10_000:04d}"
        return Arrival(
            at=at,
            channel=channel,
            intent=intent.name,
            skill=intent.skill,
            min_proficiency=3 if vip else 1,
            language=language,
            priority=50 if vip else 0,
            patience_s=patience,
            customer_address=address,
            seq=self._seq,
        )


def _segments(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) cut at the UTC half-hour boundaries (site zones are whole or half hours
    off UTC, so the cuts are the site's interval boundaries too)."""
    if end < start:
        raise ValueError("end before start")
    cursor = start
    while cursor < end:
        epoch = cursor.timestamp()
        boundary = datetime.fromtimestamp(
            (math.floor(epoch / 1800) + 1) * 1800, tz=cursor.tzinfo or UTC
        )
        nxt = min(boundary, end)
        yield cursor, nxt
        cursor = nxt


# ---------------------------------------------------------------------------------------------
# Handling
# ---------------------------------------------------------------------------------------------


@dataclass
class HandlingModel:
    rng: random.Random
    profiles: Mapping[Channel, ChannelProfile] = field(default_factory=lambda: CHANNEL_PROFILES)

    def handle_s(self, channel: Channel) -> float:
        """Talk (or work) time: log-normal with the channel's mean, at least 10 s."""
        p = self.profiles[channel]
        mu = math.log(p.mean_handle_s) - p.handle_sigma**2 / 2
        return max(10.0, self.rng.lognormvariate(mu, p.handle_sigma))

    def wrap_up_s(self, channel: Channel) -> float:
        p = self.profiles[channel]
        sigma = 0.5
        mu = math.log(p.mean_wrap_up_s) - sigma**2 / 2
        return max(2.0, self.rng.lognormvariate(mu, sigma))

    def disposition(self, intent: str | None) -> str:
        if self.rng.random() < 0.85:
            return "resolved"
        return "follow_up" if intent is None else f"{intent.split('.')[0]}.follow_up"


# ---------------------------------------------------------------------------------------------
# Agents and schedules
# ---------------------------------------------------------------------------------------------


class Activity(StrEnum):
    WORK = "work"
    BREAK = "break"
    LUNCH = "lunch"


@dataclass(frozen=True)
class Block:
    start: datetime
    end: datetime
    activity: Activity


@dataclass(frozen=True)
class Site:
    time_zone: str
    languages: tuple[str, ...]


SITES: tuple[Site, ...] = (
    Site("Europe/Berlin", ("en", "de", "fr")),
    Site("America/New_York", ("en", "es")),
    Site("Asia/Manila", ("en", "es")),
)
SKILLS: tuple[str, ...] = ("support", "billing", "sales")


@dataclass(frozen=True)
class AgentPlan:
    agent_id: str
    name: str
    time_zone: str
    skills: Mapping[str, int]
    languages: tuple[str, ...]
    channels: tuple[Channel, ...]
    #: Local start of the shift (8 h of work plus a 30-minute lunch).
    shift_start: time
    #: Always at work (no shifts, no breaks): for tests and steady demos.
    always: bool = False

    def blocks(self, day: date) -> list[Block]:
        """The shift that starts on local `day`, as UTC blocks: work, a 15-minute break after
        2 h, lunch after 4 h, a break after 6 h 30, and work to the end."""
        tz = ZoneInfo(self.time_zone)
        start = datetime.combine(day, self.shift_start, tzinfo=tz).astimezone(UTC)
        plan = [
            (Activity.WORK, 120),
            (Activity.BREAK, 15),
            (Activity.WORK, 105),
            (Activity.LUNCH, 30),
            (Activity.WORK, 135),
            (Activity.BREAK, 15),
            (Activity.WORK, 90),
        ]
        blocks, cursor = [], start
        for activity, minutes in plan:
            end = cursor + timedelta(minutes=minutes)
            blocks.append(Block(cursor, end, activity))
            cursor = end
        return blocks

    def activity_at(self, at: datetime) -> Activity | None:
        """What the agent does at `at` (None: off shift)."""
        if self.always:
            return Activity.WORK
        local_day = at.astimezone(ZoneInfo(self.time_zone)).date()
        for day in (local_day - timedelta(days=1), local_day):
            for block in self.blocks(day):
                if block.start <= at < block.end:
                    return block.activity
        return None

    def next_change(self, at: datetime) -> datetime:
        """The next block boundary after `at` (searching today's and tomorrow's shifts)."""
        if self.always:
            return at + timedelta(days=1)
        local_day = at.astimezone(ZoneInfo(self.time_zone)).date()
        candidates = [
            edge
            for day in (local_day - timedelta(days=1), local_day, local_day + timedelta(days=1))
            for block in self.blocks(day)
            for edge in (block.start, block.end)
            if edge > at
        ]
        return min(candidates)


_SHIFT_STARTS = (time(7, 0), time(8, 0), time(9, 0), time(10, 0), time(12, 0))
_FIRST = ("Ana", "Ben", "Chloe", "Dev", "Eva", "Femi", "Gus", "Hana", "Ivan", "Jo", "Kim", "Lea")
_LAST = ("Silva", "Meyer", "Santos", "Kowalski", "Dubois", "Reyes", "Okafor", "Lee", "Berg")


@dataclass
class Roster:
    agents: list[AgentPlan]

    @classmethod
    def generate(cls, count: int, rng: random.Random, sites: Sequence[Site] = SITES) -> Roster:
        """`count` agents spread over the sites, each with two or three skills, English and the
        site's other languages, and a channel mix (voice + chat, chat + email + sms, ...)."""
        if count < 0:
            raise ValueError("count must be >= 0")
        mixes: tuple[tuple[Channel, ...], ...] = (
            (Channel.VOICE, Channel.CHAT),
            (Channel.VOICE,),
            (Channel.CHAT, Channel.EMAIL, Channel.SMS),
            (Channel.VOICE, Channel.CHAT, Channel.EMAIL, Channel.SMS),
        )
        agents = []
        for i in range(count):
            site = sites[i % len(sites)]
            skills = {s: rng.randint(2, 5) for s in rng.sample(SKILLS, rng.randint(2, 3))}
            skills.setdefault("support", rng.randint(2, 5))
            langs = ("en", *[lang for lang in site.languages[1:] if rng.random() < 0.7])
            agents.append(
                AgentPlan(
                    agent_id=f"agent-{i + 1:03d}",
                    name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                    time_zone=site.time_zone,
                    skills=skills,
                    languages=langs,
                    channels=mixes[i % len(mixes)],
                    shift_start=_SHIFT_STARTS[(i // len(sites)) % len(_SHIFT_STARTS)],
                )
            )
        return cls(agents)

    def always_on(self) -> Roster:
        """The same agents, at work all the time."""
        return Roster([replace(a, always=True) for a in self.agents])

    def working_at(self, at: datetime) -> list[AgentPlan]:
        return [a for a in self.agents if a.activity_at(at) is Activity.WORK]


def parse_rates(spec: str) -> dict[Channel, float]:
    """`voice=120,chat=60` -> peak contacts per simulated hour per channel; raises ValueError
    naming the bad part."""
    rates: dict[Channel, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"rate {part!r}: expected CHANNEL=PER_HOUR")
        try:
            channel = Channel(name.strip().lower())
        except ValueError:
            known = ", ".join(c.value for c in Channel)
            raise ValueError(f"rate {part!r}: unknown channel (one of {known})") from None
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"rate {part!r}: {value!r} is not a number") from None
        if rate < 0 or math.isnan(rate) or math.isinf(rate):
            raise ValueError(f"rate {part!r}: must be a finite number >= 0")
        rates[channel] = rate
    return rates
