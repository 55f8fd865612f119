"""Benchmark: the routing engine alone (pure domain, one core), at the reference load of issue 4:
20,000 agents, 5,000 queues, 100,000 waiting contacts, mixed channels, skills and strategies.

    uv run --all-packages python bench/routing_engine.py [--events 100000] [--seed 7]

Set-up (not measured): 5,000 queues (voice, chat, email; 1-2 required skills, a language,
all five selection strategies, service levels from 20 s to 1 h, maximum waits with overflow on
some) under 60 bullseye policies (relax proficiency after 30 s, add an agent group after 90 s);
20,000 agents in teams of 32 serving 8 queues each (chat teams with three concurrent chats,
voice and email teams blended voice + email), all available; then contacts arrive (offers are
accepted at once) until every agent is busy and 100,000 wait; a fifth of them need one more
skill of their own.

Measured: a stream of events as the service would feed them, on a simulated clock (a few ms
apart, so offer time-outs, wrap-up ends and policy steps fire along the way): arrivals,
conversations ending (the agent wraps up; a third end wrap-up themselves, the rest by timer),
acceptances of the offers made, a few rejections, agents going away and coming back. Each
`execute` is one decision: the engine fires the timers due, applies the event, and matches what
it freed or queued, building every event it emits. Its wall time is the decision latency.

Prints its figures as it goes; the last line is
`{"bench": "routing_engine", "agents", "queues", "waiting", "decision_p50_us",
"decision_p99_us", "decisions_per_s", "peak_rss_mb"}`. Goals: p99 <= 1,000 us and at least
5,000 decisions/s.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import statistics
import sys
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchkit import say

# Runnable from the repository root before the workspace installs the service.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "services/routing/src"))

from contactcenter.routing.domain import (
    AcceptOffer,
    Channel,
    Command,
    CommandContext,
    ConfigureAgent,
    ConfigurePolicy,
    ConfigureQueue,
    EndContact,
    EndWrapUp,
    MaxWaitAction,
    Presence,
    QueueContact,
    RejectOffer,
    RoutingEngine,
    SelectionStrategy,
    SetAgentState,
    StepSpec,
    Tick,
    WorkStatus,
)
from contactcenter.routing.domain.events import (
    ContactAssigned,
    ContactEnded,
    OfferIssued,
    WrapUpEnded,
)

AGENTS = 20_000
QUEUES = 5_000
WAITING = 100_000
QUEUES_PER_TEAM = 8
SKILLS = 400
GROUPS = 100
POLICIES = 60
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class Driver:
    """Feeds the engine and keeps what a desktop / the interactions service would know."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.engine = RoutingEngine("bench-tenant")
        self.clock = T0
        self.queue_channel: dict[str, Channel] = {}
        self.queue_skills: dict[str, dict[str, int]] = {}
        self.queue_lang: dict[str, str] = {}
        self.queue_ids: list[str] = []
        self.agent_ids: list[str] = []
        #: Offers not yet answered, in the order they were made.
        self.open_offers: deque[tuple[str, str]] = deque()
        #: Interactions being worked: id -> agent.
        self.working: dict[str, str] = {}
        self.working_list: list[str] = []
        self.wrapping: dict[str, str] = {}
        self.away: list[str] = []
        self.next_iid = 0
        self.offers = 0
        self.latencies: list[int] = []

    # --- plumbing ---------------------------------------------------------------------------

    def run(self, command: Command, *, measure: bool = False) -> None:
        context = CommandContext(now=self.clock)
        if measure:
            start = time.perf_counter_ns()
            outcome = self.engine.execute(command, context)
            self.latencies.append(time.perf_counter_ns() - start)
        else:
            outcome = self.engine.execute(command, context)
        if outcome.error is not None and not measure:
            raise outcome.error
        for event in outcome.events:
            self.track(event)

    def track(self, event: object) -> None:
        if isinstance(event, OfferIssued):
            self.offers += 1
            self.open_offers.append((event.offer_id, event.agent_id))
        elif isinstance(event, ContactAssigned):
            self.working[event.interaction_id] = event.agent_id
            self.working_list.append(event.interaction_id)
        elif isinstance(event, ContactEnded):
            self.working.pop(event.interaction_id, None)
            if event.wrap_up_until is not None:
                self.wrapping[event.interaction_id] = event.agent_id
        elif isinstance(event, WrapUpEnded):
            self.wrapping.pop(event.interaction_id, None)

    @property
    def waiting(self) -> int:
        """Contacts in queues and not offered (routing holds waiting and offered ones)."""
        return len(self.engine.contacts) - len(self.engine.offers)

    def tick(self, ms: float, *, measure: bool = False) -> None:
        """Move the clock; on the way, wake the engine at each timer's time, as the service's
        timer loop does (each wake-up is a decision of its own)."""
        target = self.clock + timedelta(milliseconds=ms)
        while True:
            due = self.engine.next_timer_at()
            if due is None or due > target:
                break
            self.clock = max(self.clock, due)
            self.run(Tick(), measure=measure)
        self.clock = target

    # --- set-up -----------------------------------------------------------------------------

    def configure(self) -> None:
        rng = self.rng
        for p in range(POLICIES):
            steps = [StepSpec(after_s=0, name="own")]
            steps.append(StepSpec(after_s=30, name="relaxed", min_proficiency_delta=-1))
            if p % 2 == 0:
                steps.append(
                    StepSpec(
                        after_s=90,
                        name="overflow group",
                        min_proficiency_delta=-1,
                        agent_groups=(f"g{p % GROUPS}",),
                    )
                )
            self.run(ConfigurePolicy(policy_id=f"p{p}", steps=tuple(steps)))
        strategies = list(SelectionStrategy)
        for i in range(QUEUES):
            qid = f"q{i}"
            team = i // QUEUES_PER_TEAM
            # A team's queues share its channel profile, so its agents can serve them.
            channel = (Channel.VOICE, Channel.CHAT, Channel.VOICE, Channel.EMAIL, Channel.VOICE)[
                team % 5
            ]
            skills = {
                f"s{(team * 3 + k) % SKILLS}": rng.randint(1, 3) for k in range(rng.randint(1, 2))
            }
            lang = "en" if i % 10 < 8 else ("es" if i % 10 == 8 else "fr")
            threshold = {Channel.VOICE: 20, Channel.CHAT: 60, Channel.EMAIL: 3600}[channel]
            overflow = i % 7 == 0
            self.run(
                ConfigureQueue(
                    queue_id=qid,
                    channels=(channel,),
                    required_skills=skills,
                    language=lang,
                    sl_threshold_s=threshold,
                    priority=rng.choice((0, 0, 0, 5, 10)),
                    max_wait_s=600 if overflow else None,
                    max_wait_action=MaxWaitAction.OVERFLOW if overflow else MaxWaitAction.EXIT,
                    overflow_queue_id=f"q{(i + QUEUES_PER_TEAM) % QUEUES}" if overflow else None,
                    offer_timeout_s=20,
                    wrap_up_s=5,
                    strategy=strategies[i % len(strategies)],
                    policy_id=f"p{i % POLICIES}" if i % 3 else None,
                )
            )
            self.queue_ids.append(qid)
            self.queue_channel[qid] = channel
            self.queue_skills[qid] = skills
            self.queue_lang[qid] = lang
        teams = QUEUES // QUEUES_PER_TEAM
        for a in range(AGENTS):
            team = a % teams
            queues = tuple(f"q{team * QUEUES_PER_TEAM + k}" for k in range(QUEUES_PER_TEAM))
            skills: dict[str, int] = {
                f"s{(team * 3 + k) % SKILLS}": rng.randint(2, 5) for k in range(3)
            }
            for _ in range(3):
                skills[f"s{rng.randrange(SKILLS)}"] = rng.randint(1, 5)
            channel = self.queue_channel[queues[0]]
            channels = (
                (Channel.VOICE, Channel.EMAIL) if channel is not Channel.CHAT else (Channel.CHAT,)
            )
            self.run(
                ConfigureAgent(
                    agent_id=f"a{a}",
                    skills=skills,
                    languages=("en", "es", "fr"),
                    queues=queues,
                    groups=(f"g{a % GROUPS}",),
                    channels=channels,
                    time_zone=rng.choice(("UTC", "Europe/Paris", "America/New_York")),
                )
            )
            self.agent_ids.append(f"a{a}")

    def arrive(self, *, measure: bool) -> None:
        rng = self.rng
        qid = self.queue_ids[rng.randrange(QUEUES)]
        self.next_iid += 1
        # A fifth of the contacts need one more skill of their team (a smaller pool).
        team = int(qid[1:]) // QUEUES_PER_TEAM
        own = {} if rng.random() < 0.8 else {f"s{(team * 3 + rng.randrange(3)) % SKILLS}": 2}
        self.run(
            QueueContact(
                interaction_id=f"i{self.next_iid}",
                queue_id=qid,
                channel=self.queue_channel[qid],
                priority=rng.choice((0, 0, 0, 0, 10, 50)),
                required_skills=own,
            ),
            measure=measure,
        )

    def fill(self) -> None:
        for aid in self.agent_ids:
            self.run(SetAgentState(agent_id=aid, presence=Presence.AVAILABLE))
        while self.waiting < WAITING:
            self.tick(1)
            self.arrive(measure=False)
            while self.open_offers:
                offer_id, agent_id = self.open_offers.popleft()
                self.run(AcceptOffer(offer_id=offer_id, agent_id=agent_id))

    # --- the measured stream ----------------------------------------------------------------

    def step(self) -> None:
        rng = self.rng
        self.tick(rng.uniform(0.5, 3.0), measure=True)
        roll = rng.random()
        if self.open_offers and roll < 0.30:
            offer_id, agent_id = self.open_offers.popleft()
            if self.engine.offer_status(offer_id) != "offered":
                return
            if rng.random() < 0.05:
                self.run(RejectOffer(offer_id=offer_id, agent_id=agent_id), measure=True)
            else:
                self.run(AcceptOffer(offer_id=offer_id, agent_id=agent_id), measure=True)
        elif roll < 0.60:
            # A conversation ends: keep the number waiting near the reference.
            iid = None
            while self.working_list and iid is None:
                j = rng.randrange(len(self.working_list))
                candidate = self.working_list[j]
                self.working_list[j] = self.working_list[-1]
                self.working_list.pop()
                if candidate in self.working:
                    iid = candidate
            if iid is not None:
                self.run(EndContact(interaction_id=iid), measure=True)
        elif roll < 0.70 and self.wrapping:
            iid, agent_id = next(iter(self.wrapping.items()))
            self.run(EndWrapUp(agent_id=agent_id, interaction_id=iid), measure=True)
        elif roll < 0.73:
            if self.away and rng.random() < 0.5:
                agent_id = self.away.pop(rng.randrange(len(self.away)))
                self.run(
                    SetAgentState(agent_id=agent_id, presence=Presence.AVAILABLE), measure=True
                )
            else:
                agent_id = self.agent_ids[rng.randrange(AGENTS)]
                self.run(
                    SetAgentState(agent_id=agent_id, presence=Presence.AWAY, reason_code="break"),
                    measure=True,
                )
                self.away.append(agent_id)
        else:
            if self.waiting < WAITING:
                self.arrive(measure=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="measured events")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--gc",
        choices=("on", "off"),
        default="on",
        help="automatic cyclic GC during the measured stream (off: as a latency-tuned service "
        "may run it; the engine leaves no cycles behind, checked at the end)",
    )
    args = parser.parse_args()

    driver = Driver(args.seed)
    engine = driver.engine
    started = time.perf_counter()
    driver.configure()
    say(
        f"configured {QUEUES} queues, {AGENTS} agents, {POLICIES} policies "
        f"in {time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    driver.fill()
    busy = sum(1 for a in engine.agents.values() if a.items)
    say(
        f"filled: {driver.waiting} waiting, {busy} agents busy, {len(driver.working)} being worked "
        f"in {time.perf_counter() - started:.1f} s"
    )
    gc.collect()
    gc.freeze()  # the set-up's objects live on: keep the collector from walking them again
    if args.gc == "off":
        gc.disable()
    offers_before = driver.offers
    events_before = engine.version
    started = time.perf_counter()
    done = 0
    while len(driver.latencies) < args.events:
        driver.step()
        if len(driver.latencies) >= done + args.events // 5:
            done = len(driver.latencies)
            say(
                f"  {done} events: {driver.waiting} waiting, "
                f"p99 so far {sorted(driver.latencies)[int(done * 0.99)] / 1000:.0f} us"
            )
    wall = time.perf_counter() - started
    gc.enable()
    garbage = gc.collect()
    latencies = sorted(driver.latencies)
    n = len(latencies)
    engine_s = sum(latencies) / 1e9
    p50 = latencies[n // 2] / 1000
    p99 = latencies[int(n * 0.99)] / 1000
    offers = driver.offers - offers_before
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    waiting_now = sum(1 for c in engine.contacts.values() if c.status.value == "waiting")
    busy_items = sum(
        1
        for a in engine.agents.values()
        for i in a.items.values()
        if i.status is WorkStatus.ASSIGNED
    )
    say(f"measured {n} events in {wall:.1f} s wall ({engine_s:.2f} s inside the engine)")
    say(
        f"  waiting now {waiting_now}; assigned work {busy_items}; offers made {offers}; "
        f"events emitted {engine.version - events_before}"
    )
    say(
        f"  decision latency p50 {p50:.1f} us, p90 {latencies[int(n * 0.9)] / 1000:.1f} us, "
        f"p99 {p99:.1f} us, p99.9 {latencies[int(n * 0.999)] / 1000:.1f} us, "
        f"max {latencies[-1] / 1000:.0f} us, mean {statistics.fmean(latencies) / 1000:.1f} us"
    )
    say(
        f"  decisions/s (events decided per second of engine time) {n / engine_s:,.0f}; "
        f"with the driver's own work {n / wall:,.0f} per wall second; "
        f"offers/s {offers / engine_s:,.0f}"
    )
    say(f"  peak RSS {peak_mb:.0f} MB; automatic GC {args.gc}; cyclic garbage left: {garbage}")
    goals = p99 <= 1000 and n / engine_s >= 5000
    say(f"  goals (p99 <= 1,000 us, >= 5,000 decisions/s): {'met' if goals else 'NOT met'}")
    print(
        json.dumps(
            {
                "bench": "routing_engine",
                "agents": AGENTS,
                "queues": QUEUES,
                "waiting": WAITING,
                "decision_p50_us": round(p50, 1),
                "decision_p99_us": round(p99, 1),
                "decisions_per_s": round(n / engine_s),
                "peak_rss_mb": round(peak_mb),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
