"""Properties of the dispatcher, checked on a small pure simulation of a counter.

Hypothesis draws clerks (skills, jurisdictions) and a script of events: arrivals
with random matters, priorities, origins and supervisor assignments; accepts,
declines, timeouts (time advancing past an offer), citizens leaving, clerks going
on break, away or offline mid-offer or mid-session (requeue at head), pausing a
matter. After every event the simulation expires offers and runs ``match`` on
snapshots, exactly as the shell will, and applies the offers through the real
presence and session state machines, so an offer to a clerk who is not
available fails there too.

A second driver draws single random snapshots instead, denser than the
simulation reaches on its own: long queues competing for the same clerks, many
requeued tickets, missed sets, and stale snapshots in which a clerk named in a
ticket's ``offered_to`` still reads as available.

Eligibility and service order are re-derived here from the raw arrival data
(region tree, matter levels, elapsed time) rather than taken from the module,
so a bug in pools or widening is not hidden by using the code under test as its
own oracle.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling.dispatcher import Channel, Clerk, Offer, Priority, Ticket, build_pools, match
from signaling.presence import WORKING, ClerkPresence, MissReason, PresenceState
from signaling.sessions import Outcome, Session, SessionState

S = PresenceState
ESCALATION = 60.0
OFFER_TIMEOUT = 30.0

CHAINS: dict[str, list[tuple[str, str]]] = {
    "V1": [("V1", "village"), ("T1", "township"), ("K1", "county"), ("C1", "city")],
    "V2": [("V2", "village"), ("T1", "township"), ("K1", "county"), ("C1", "city")],
    "V3": [("V3", "village"), ("T2", "township"), ("K2", "county"), ("C1", "city")],
    "T2": [("T2", "township"), ("K2", "county"), ("C1", "city")],
}
ORIGINS = sorted(CHAINS)
PARTNERS = ("P1",)
REGION_CODES = ["V1", "V2", "V3", "T1", "T2", "K1", "K2", "C1", "P1"]


@dataclass(frozen=True)
class Matter:
    code: str
    category: str
    levels: frozenset[str]
    cross_city: bool


MATTERS = [
    Matter("m1", "civil", frozenset({"village", "township", "county", "city"}), False),
    Matter("m2", "civil", frozenset({"county", "city"}), True),
    Matter("m3", "tax", frozenset({"township"}), False),
    Matter("m4", "tax", frozenset({"city"}), True),
]
MATTER_BY_CODE = {m.code: m for m in MATTERS}
SKILLS = ["m1", "m2", "m3", "m4", "civil", "tax", "*"]


@dataclass(frozen=True)
class ClerkSpec:
    id: str
    skills: frozenset[str]
    jurisdictions: frozenset[str]


@dataclass(frozen=True)
class Arrive:
    matter: int
    origin: int
    priority: bool
    assign_to: int | None


@dataclass(frozen=True)
class Advance:
    seconds: int


@dataclass(frozen=True)
class Respond:
    pick: int
    accept: bool


@dataclass(frozen=True)
class ClerkAction:
    pick: int
    action: str  # a key of ACTION_FROM; "lost" is a busy clerk's connection dropping


@dataclass(frozen=True)
class Leave:
    pick: int


@dataclass(frozen=True)
class TogglePause:
    matter: int


ACTION_FROM = {
    "finish": {S.BUSY},
    "ready": {S.WRAP_UP, S.AWAY, S.BREAK, S.OFFLINE},
    "break": {S.AVAILABLE},
    "away": {S.AVAILABLE},
    "logout": set(S) - {S.OFFLINE},
    "lost": {S.BUSY},
}

Event = Arrive | Advance | Respond | ClerkAction | Leave | TogglePause


@dataclass(frozen=True)
class Round:
    now: float
    tickets: tuple[Ticket, ...]
    clerks: tuple[Clerk, ...]
    paused: frozenset[str]
    offers: tuple[Offer, ...]


@dataclass
class Simulation:
    specs: list[ClerkSpec]
    now: float = 0.0
    presence: dict[str, ClerkPresence] = field(default_factory=dict)
    missed: dict[str, set[str]] = field(default_factory=dict)
    queue: dict[str, Ticket] = field(default_factory=dict)
    offers: dict[str, Offer] = field(default_factory=dict)  # by clerk: a double offer shows
    sessions: dict[str, tuple[Session, Ticket]] = field(default_factory=dict)
    origin_of: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    endings: list[tuple[str, str]] = field(default_factory=list)
    paused: set[str] = field(default_factory=set)
    rounds: list[Round] = field(default_factory=list)
    accounting_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for spec in self.specs:
            self.presence[spec.id] = ClerkPresence(spec.id)
            self.missed[spec.id] = set()

    def run(self, events: list[Event]) -> Simulation:
        for spec in self.specs:
            self.presence[spec.id].transition(S.AVAILABLE, reason="login", now=self.now)
        self.step()
        for event in events:
            self.apply(event)
            self.step()
        return self

    def apply(self, event: Event) -> None:
        if isinstance(event, Arrive):
            self.arrive(event)
        elif isinstance(event, Advance):
            self.now += event.seconds
        elif isinstance(event, Respond):
            offered = sorted(self.offers)
            if offered:
                self.respond(offered[event.pick % len(offered)], event.accept)
        elif isinstance(event, ClerkAction):
            able = [c.id for c in self.specs
                    if self.presence[c.id].state in ACTION_FROM[event.action]]
            if able:
                self.clerk_action(able[event.pick % len(able)], event.action)
        elif isinstance(event, Leave):
            self.leave(event.pick)
        else:
            self.paused ^= {MATTERS[event.matter].code}

    def arrive(self, event: Arrive) -> None:
        matter, origin = MATTERS[event.matter], ORIGINS[event.origin]
        ticket_id = f"t{len(self.created):03d}"
        assigned = None
        if event.assign_to is not None:
            assigned = self.specs[event.assign_to % len(self.specs)].id
        self.queue[ticket_id] = Ticket(
            id=ticket_id, matter=matter.code, category=matter.category,
            channel=Channel.MOBILE, priority=Priority.PRIORITY if event.priority
            else Priority.NORMAL, created_at=self.now, escalation_seconds=ESCALATION,
            pools=build_pools(CHAINS[origin], matter.levels,
                              PARTNERS if matter.cross_city else ()),
            assigned_clerk=assigned,
        )
        self.origin_of[ticket_id] = origin
        self.created.append(ticket_id)

    def respond(self, clerk_id: str, accept: bool) -> None:
        offer = self.offers[clerk_id]
        if accept:
            del self.offers[clerk_id]
            self.queue.pop(offer.ticket_id, None)
            self.presence[clerk_id].transition(S.BUSY, reason="accept", now=self.now)
            session, _ = self.sessions[clerk_id]
            for state in (SessionState.ACCEPTED, SessionState.CONNECTING, SessionState.ACTIVE):
                session.transition(state, reason="accept", now=self.now)
        else:
            self.miss(offer, MissReason.DECLINED)

    def miss(self, offer: Offer, reason: MissReason) -> None:
        self.withdraw(offer, reason, Outcome.ABANDONED)
        self.missed[offer.clerk_id].add(offer.ticket_id)
        self.presence[offer.clerk_id].miss(reason, now=self.now)

    def withdraw(self, offer: Offer, reason: str, outcome: Outcome) -> None:
        del self.offers[offer.clerk_id]
        self.queue[offer.ticket_id] = replace(self.queue[offer.ticket_id], offered_to=None)
        session, _ = self.sessions.pop(offer.clerk_id)
        session.transition(SessionState.ENDED, reason=reason, now=self.now, outcome=outcome)

    def clerk_action(self, clerk_id: str, action: str) -> None:
        presence = self.presence[clerk_id]
        state = presence.state
        if action == "finish":
            session, ticket = self.sessions.pop(clerk_id)
            session.transition(SessionState.ENDED, reason="done", now=self.now,
                               outcome=Outcome.COMPLETED)
            presence.transition(S.WRAP_UP, reason="session_ended", now=self.now)
            self.endings.append((ticket.id, "served"))
        elif action == "ready":
            presence.transition(S.AVAILABLE, reason="ready", now=self.now)
        elif action in ("break", "away"):
            presence.transition(S(action), reason=action, now=self.now)
        else:
            offer = self.offers.get(clerk_id)
            if offer is not None:
                self.withdraw(offer, "clerk_offline", Outcome.FAILED)
            if state is S.BUSY:
                session, ticket = self.sessions.pop(clerk_id)
                session.transition(SessionState.ENDED, reason="clerk_lost", now=self.now,
                                   outcome=Outcome.FAILED)
                self.queue[ticket.id] = replace(ticket, requeued_at_head=True, offered_to=None)
            presence.transition(S.OFFLINE, reason="logout", now=self.now)

    def leave(self, pick: int) -> None:
        in_session = {ticket.id: clerk_id for clerk_id, (session, ticket) in self.sessions.items()
                      if session.state is not SessionState.OFFERED}
        live = sorted(set(self.queue) | set(in_session))
        if not live:
            return
        ticket_id = live[pick % len(live)]
        for offer in [o for o in self.offers.values() if o.ticket_id == ticket_id]:
            self.withdraw(offer, "citizen_left", Outcome.ABANDONED)
            self.presence[offer.clerk_id].transition(S.AVAILABLE, reason="citizen_left",
                                                     now=self.now)
        if ticket_id in self.queue:
            del self.queue[ticket_id]
        else:
            clerk_id = in_session[ticket_id]
            session, _ = self.sessions.pop(clerk_id)
            session.transition(SessionState.ENDED, reason="citizen_left", now=self.now,
                               outcome=Outcome.ABANDONED)
            self.presence[clerk_id].transition(S.WRAP_UP, reason="citizen_left", now=self.now)
        self.endings.append((ticket_id, "left"))

    def snapshot(self) -> tuple[Clerk, ...]:
        return tuple(
            Clerk(id=spec.id, skills=spec.skills, jurisdictions=spec.jurisdictions,
                  state=self.presence[spec.id].state, idle_since=self.presence[spec.id].idle_since,
                  sessions_today=self.presence[spec.id].sessions_today,
                  missed=frozenset(self.missed[spec.id]))
            for spec in self.specs
        )

    def step(self) -> None:
        for offer in sorted(self.offers.values(), key=lambda o: o.ticket_id):
            if offer.expires_at <= self.now:
                self.miss(offer, MissReason.TIMEOUT)
        tickets = tuple(self.queue.values())
        paused = frozenset(self.paused)
        clerks = self.snapshot()
        offers = match(tickets, clerks, self.now, paused, offer_timeout=OFFER_TIMEOUT)
        self.rounds.append(Round(self.now, tickets, clerks, paused, tuple(offers)))
        for offer in offers:
            self.presence[offer.clerk_id].transition(S.OFFERED, reason="offer", now=self.now)
            ticket = self.queue[offer.ticket_id]
            self.queue[offer.ticket_id] = replace(ticket, offered_to=offer.clerk_id)
            self.offers[offer.clerk_id] = offer
            self.sessions[offer.clerk_id] = (
                Session(f"s{len(self.rounds)}-{offer.clerk_id}", ticket_id=ticket.id,
                        clerk_id=offer.clerk_id, ticket_created_at=ticket.created_at,
                        offered_at=self.now), ticket)
        self.check_accounting()

    def check_accounting(self) -> None:
        in_call = [t.id for s, t in self.sessions.values() if s.state is not SessionState.OFFERED]
        ended = [ticket_id for ticket_id, _ in self.endings]
        places = list(self.queue) + in_call + ended
        if sorted(places) != sorted(self.created):
            self.accounting_errors.append(
                f"at {self.now}: created {sorted(self.created)}, found {sorted(places)}")


# --- oracles ---------------------------------------------------------------------------

def oracle_eligible(clerk: Clerk, ticket: Ticket, origin: str, now: float) -> bool:
    if ticket.assigned_clerk is not None:
        return clerk.id == ticket.assigned_clerk
    matter = MATTER_BY_CODE[ticket.matter]
    if not clerk.skills & {"*", matter.code, matter.category}:
        return False
    levels: list[set[str]] = [{code} for code, level in CHAINS[origin] if level in matter.levels]
    if matter.cross_city:
        levels.append(set(PARTNERS))
    opened = int((now - ticket.created_at) // ESCALATION) + 1
    reachable = set().union(*levels[:opened])
    return bool(clerk.jurisdictions & reachable)


@dataclass(frozen=True)
class Trace:
    """Rounds of ``match`` to check, and where each ticket's citizen is."""

    rounds: list[Round]
    origin_of: dict[str, str]
    accounting_errors: list[str]

    def offerable(self, clerk: Clerk, ticket: Ticket, rnd: Round) -> bool:
        """Eligible, and not a clerk who missed it while someone else at work could take it."""
        def can(c: Clerk) -> bool:
            return oracle_eligible(c, ticket, self.origin_of[ticket.id], rnd.now)
        if not can(clerk):
            return False
        return ticket.id not in clerk.missed or not any(
            other.state in WORKING and ticket.id not in other.missed and can(other)
            for other in rnd.clerks)


def served_before(a: Ticket, b: Ticket) -> bool:
    def key(t: Ticket) -> tuple[bool, bool, float, str]:
        return (t.priority is not Priority.PRIORITY, not t.requeued_at_head, t.created_at, t.id)
    return key(a) < key(b)


# --- strategies ------------------------------------------------------------------------

# Wildcards, whole categories and the city are drawn more often than their share,
# so that most scenarios have clerks and tickets that meet.
skill_sets = st.frozensets(st.sampled_from([*SKILLS, "*", "civil", "tax"]), min_size=1,
                           max_size=3)
jurisdiction_sets = st.frozensets(st.sampled_from([*REGION_CODES, "C1", "T1", "T2", "V1"]),
                                  min_size=1, max_size=4)
clerk_specs = st.lists(st.tuples(skill_sets, jurisdiction_sets), min_size=1, max_size=4).map(
    lambda specs: [ClerkSpec(f"c{i}", skills, juris) for i, (skills, juris) in enumerate(specs)])

arrivals = st.builds(Arrive, st.integers(0, len(MATTERS) - 1), st.integers(0, len(ORIGINS) - 1),
                     st.booleans(), st.sampled_from([None] * 6 + [0, 1, 2, 3]))
responses = st.builds(Respond, st.integers(0, 3), st.sampled_from([True, True, False]))
clerk_actions = st.builds(ClerkAction, st.integers(0, 3), st.sampled_from(
    ["finish", "finish", "ready", "ready", "break", "away", "logout", "lost", "lost"]))
advances = st.builds(Advance, st.sampled_from([1, 5, 29, 30, 31, 59, 60, 61, 200]))
leaves = st.builds(Leave, st.integers(0, 20))
pauses = st.builds(TogglePause, st.integers(0, len(MATTERS) - 1))
WEIGHTS = ((arrivals, 6), (responses, 5), (clerk_actions, 6), (advances, 3), (leaves, 2),
           (pauses, 1))
events: st.SearchStrategy[Event] = st.one_of(
    *[strategy for strategy, weight in WEIGHTS for _ in range(weight)])


def simulate(specs: list[ClerkSpec], script: list[Event]) -> Trace:
    sim = Simulation(specs).run(script)
    return Trace(sim.rounds, sim.origin_of, sim.accounting_errors)


simulations = st.builds(simulate, clerk_specs, st.lists(events, min_size=20, max_size=100))


# Wider skills and jurisdictions than in the simulation, so that several tickets
# usually compete for the same clerk and the order in which they are served shows.
crowded_clerk_specs = st.lists(
    st.tuples(st.frozensets(st.sampled_from(["*", "*", "civil", "tax", "m1"]), min_size=1,
                            max_size=2),
              st.frozensets(st.sampled_from(REGION_CODES), min_size=2, max_size=6)),
    min_size=1, max_size=4,
).map(lambda specs: [ClerkSpec(f"c{i}", skills, juris) for i, (skills, juris) in enumerate(specs)])


@st.composite
def snapshots(draw: st.DrawFn) -> Trace:
    """One round on a random snapshot, including states the simulation rarely reaches:
    many requeued tickets, long queues, stale snapshots naming an available clerk in
    a ticket's ``offered_to``."""
    now = float(draw(st.integers(0, 400)))
    specs = draw(crowded_clerk_specs)
    clerk_ids = [spec.id for spec in specs]
    tickets, origin_of = [], {}
    for i in range(draw(st.integers(3, 10))):
        matter, origin = draw(st.sampled_from(MATTERS)), draw(st.sampled_from(ORIGINS))
        ticket_id = f"t{i:03d}"
        origin_of[ticket_id] = origin
        tickets.append(Ticket(
            id=ticket_id, matter=matter.code, category=matter.category, channel=Channel.MOBILE,
            priority=draw(st.sampled_from([Priority.NORMAL] * 3 + [Priority.PRIORITY])),
            created_at=now - draw(st.sampled_from([0, 1, 30, 59, 60, 61, 119, 120, 250])),
            escalation_seconds=ESCALATION,
            pools=build_pools(CHAINS[origin], matter.levels,
                              PARTNERS if matter.cross_city else ()),
            assigned_clerk=draw(st.sampled_from([None] * 8 + clerk_ids)),
            requeued_at_head=draw(st.booleans()),
            offered_to=draw(st.sampled_from([None] * 8 + clerk_ids)),
        ))
    ticket_ids = [t.id for t in tickets]
    clerks = tuple(
        Clerk(id=spec.id, skills=spec.skills, jurisdictions=spec.jurisdictions,
              state=draw(st.sampled_from([S.AVAILABLE] * 5 + list(S))),
              idle_since=draw(st.none() | st.integers(0, 400).map(float)),
              sessions_today=draw(st.integers(0, 3)),
              missed=draw(st.frozensets(st.sampled_from(ticket_ids))) if ticket_ids
              else frozenset())
        for spec in specs)
    paused = draw(st.frozensets(st.sampled_from([m.code for m in MATTERS]), max_size=2))
    offers = match(tickets, clerks, now, paused, offer_timeout=OFFER_TIMEOUT)
    return Trace([Round(now, tuple(tickets), clerks, paused, tuple(offers))], origin_of, [])


# Snapshots are cheap and find ordering bugs that need crowded queues, so they get
# three draws in four.
traces = st.one_of(simulations, snapshots(), snapshots(), snapshots())

property_settings = settings(max_examples=600, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


# --- properties --------------------------------------------------------------------------

def waiting_after(rnd: Round) -> list[Ticket]:
    offered_now = {o.ticket_id for o in rnd.offers}
    return [t for t in rnd.tickets if t.offered_to is None and t.id not in offered_now
            and t.matter not in rnd.paused]


@property_settings
@given(traces)
def test_no_offer_goes_to_an_ineligible_clerk(trace: Trace) -> None:
    for rnd in trace.rounds:
        clerks = {c.id: c for c in rnd.clerks}
        tickets = {t.id: t for t in rnd.tickets}
        for offer in rnd.offers:
            ticket, clerk = tickets[offer.ticket_id], clerks[offer.clerk_id]
            assert trace.offerable(clerk, ticket, rnd), offer
            assert ticket.matter not in rnd.paused, offer
            assert offer.expires_at == rnd.now + OFFER_TIMEOUT


@property_settings
@given(traces)
def test_a_clerk_never_holds_two_offers(trace: Trace) -> None:
    for rnd in trace.rounds:
        holding = {t.offered_to for t in rnd.tickets if t.offered_to is not None}
        already_offered = {t.id for t in rnd.tickets if t.offered_to is not None}
        new_clerks = [o.clerk_id for o in rnd.offers]
        new_tickets = [o.ticket_id for o in rnd.offers]
        assert len(set(new_clerks)) == len(new_clerks), rnd.offers
        assert len(set(new_tickets)) == len(new_tickets), rnd.offers
        assert not holding & set(new_clerks), rnd
        assert not already_offered & set(new_tickets), rnd
        states = {c.id: c.state for c in rnd.clerks}
        assert all(states[c] is S.AVAILABLE for c in new_clerks), rnd


@property_settings
@given(traces)
def test_no_later_ticket_overtakes_an_earlier_one_for_the_same_clerk(trace: Trace) -> None:
    for rnd in trace.rounds:
        clerks = {c.id: c for c in rnd.clerks}
        tickets = {t.id: t for t in rnd.tickets}
        waiting = waiting_after(rnd)
        for offer in rnd.offers:
            clerk, later = clerks[offer.clerk_id], tickets[offer.ticket_id]
            for earlier in waiting:
                assert not (served_before(earlier, later)
                            and trace.offerable(clerk, earlier, rnd)), (
                    f"{later.id} got {clerk.id} ahead of {earlier.id} at {rnd.now}")


@property_settings
@given(simulations)
def test_every_ticket_ends_exactly_once(trace: Trace) -> None:
    assert trace.accounting_errors == []


@property_settings
@given(traces)
def test_no_waiting_ticket_is_left_beside_an_unused_eligible_clerk(trace: Trace) -> None:
    for rnd in trace.rounds:
        used = {o.clerk_id for o in rnd.offers} | {
            t.offered_to for t in rnd.tickets if t.offered_to is not None}
        idle = [c for c in rnd.clerks if c.state is S.AVAILABLE and c.id not in used]
        for ticket in waiting_after(rnd):
            for clerk in idle:
                assert not trace.offerable(clerk, ticket, rnd), (
                    f"{ticket.id} waits while {clerk.id} is idle at {rnd.now}")
