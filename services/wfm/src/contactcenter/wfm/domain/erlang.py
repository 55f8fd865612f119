"""Queueing formulas for staffing, vectorised with NumPy over a grid of (queue, interval) cells.

Erlang C (M/M/N): the probability of waiting comes from the Erlang B recursion kept in log
space, log(1/B(n)) = log(1 + (n/A) / B(n-1)), which never overflows (pyworkforce's 1/B grows
like n!/A^n) and is exact for any traffic, 20,000 Erlangs included. A system with N <= A
agents is unstable (every caller waits forever): the comparison N > A is made on exact
fractions, so traffic that is a whole number (A = 17 Erlangs) is never taken for N = 17.

Erlang A (M/M/N+M, customers abandon after an exponential patience with mean 1/theta): an
arriving customer who finds j customers waiting is answered with probability x / (x + j + 1)
(x = N mu / theta), and then after a sum of exponentials with rates theta (x + k), k = 1..j+1,
whose transform U = exp(-theta S) is Beta(x + 1, j + 1) distributed. So

    P(answered within t) = P(no wait) + sum_j w_j x / (x + j + 1) (1 - I_u(x + 1, j + 1))

with u = exp(-theta t) and I the regularised incomplete beta function, summed as a negative
binomial in log space (log u = -theta t never underflows, however small exp(-lambda t) gets).
The weights w_j = P(an arrival sees N + j in the system) are the birth-death stationary
distribution, normalised with the Erlang B term, also in log space.

Service level is "answered within t / offered" (reporting's answered_within_threshold /
offered); ASA is the mean wait of answered contacts; occupancy is carried load / agents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt
from scipy.special import gammaincc, gammaln

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Terms of the waiting-customer sum beyond this many standard deviations are dropped
#: (below 1e-17 of the total).
_TAIL_SIGMAS = 9.0
#: Erlang A cells evaluated together (sorted by the length of their sums).
_BLOCK = 256


@dataclass(frozen=True, slots=True)
class Target:
    """What staffing must achieve; a 0 / None field is not a target."""

    service_level: float = 0.0
    service_level_seconds: float = 20.0
    max_asa_seconds: float = 0.0
    max_abandon_rate: float = 0.0
    max_occupancy: float = 0.0


@dataclass(frozen=True, slots=True)
class Staffing:
    """Per cell: agents and what they achieve (arrays of one shape)."""

    agents: IntArray
    service_level: FloatArray
    asa_seconds: FloatArray
    abandon_rate: FloatArray
    occupancy: FloatArray
    traffic: FloatArray


def exact_fraction(value: float) -> Fraction:
    """A float as the decimal a person wrote (0.85 is 17/20, not 0.84999...)."""
    return Fraction(repr(float(value)))


def traffic_erlangs(volume: float, aht_seconds: float, interval_seconds: float) -> Fraction:
    """Offered load, exactly."""
    return exact_fraction(volume) * exact_fraction(aht_seconds) / exact_fraction(interval_seconds)


def min_agents_exact(
    volume: FloatArray, aht_seconds: FloatArray, interval_seconds: float, max_occupancy: float
) -> tuple[IntArray, IntArray]:
    """Per cell: the fewest agents for a stable Erlang C queue (N > A) and for the occupancy
    cap (A / N <= cap), both decided on exact fractions (no floating-point error at the
    boundary: 17 Erlangs at an 85% cap need exactly 20 agents)."""
    flat_v = np.asarray(volume, dtype=np.float64).ravel()
    flat_h = np.asarray(aht_seconds, dtype=np.float64).ravel()
    stable = np.empty(flat_v.shape, dtype=np.int64)
    occupancy = np.zeros(flat_v.shape, dtype=np.int64)
    cap = exact_fraction(max_occupancy) if max_occupancy > 0 else None
    interval = exact_fraction(interval_seconds)
    # Whole counts and seconds (the usual case): integer arithmetic, vectorised and exact.
    whole = (
        (flat_v == np.round(flat_v))
        & (flat_h == np.round(flat_h))
        & (np.abs(flat_v * flat_h) < 2.0**40)
    )
    if interval.denominator == 1 and (cap is None or cap.numerator < 2**20):
        work = np.round(flat_v[whole]).astype(np.int64) * np.round(flat_h[whole]).astype(np.int64)
        seconds = int(interval.numerator)
        stable[whole] = work // seconds + 1
        if cap is not None:
            # ceil(work / seconds / (p / q)) = ceil(work q / (seconds p))
            num = work * cap.denominator
            den = seconds * cap.numerator
            occupancy[whole] = -(-num // den)
    else:
        whole[:] = False
    for i in np.flatnonzero(~whole):
        a = traffic_erlangs(float(flat_v[i]), float(flat_h[i]), interval_seconds)
        stable[i] = math.floor(a) + 1
        if cap is not None:
            occupancy[i] = math.ceil(a / cap)
    return stable.reshape(volume.shape), occupancy.reshape(volume.shape)


def _log_inv_erlang_b_step(
    log_inv_b: FloatArray, n: float | FloatArray, log_a: FloatArray
) -> FloatArray:
    """log(1/B(n)) from log(1/B(n-1)): 1/B(n) = 1 + (n / A) / B(n-1)."""
    result: FloatArray = np.logaddexp(0.0, np.log(n) - log_a + log_inv_b)
    return result


def log_inv_erlang_b(agents: IntArray, traffic: FloatArray) -> FloatArray:
    """log(1/B(N, A)) per cell (vectorised; the recursion runs to the largest N)."""
    agents = np.asarray(agents, dtype=np.int64)
    log_a = np.log(np.maximum(traffic, 1e-300))
    out = np.zeros(traffic.shape, dtype=np.float64)
    top = int(agents.max(initial=0))
    current = np.zeros(traffic.shape, dtype=np.float64)
    for n in range(1, top + 1):
        current = _log_inv_erlang_b_step(current, float(n), log_a)
        done = agents == n
        if done.any():
            out[done] = current[done]
    return out


def erlang_c_metrics(
    agents: IntArray,
    traffic: FloatArray,
    aht_seconds: FloatArray,
    threshold_seconds: float,
    log_inv_b: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(probability of waiting, service level, ASA seconds) per cell; unstable cells
    (N <= A) wait with probability 1, service level 0 and infinite ASA."""
    n = np.asarray(agents, dtype=np.float64)
    lib = log_inv_erlang_b(agents, traffic) if log_inv_b is None else log_inv_b
    stable = n > traffic
    inv_b = np.exp(-lib)  # B
    with np.errstate(divide="ignore", invalid="ignore"):
        p_wait = np.where(stable, n * inv_b / (n - traffic * (1.0 - inv_b)), 1.0)
        p_wait = np.clip(p_wait, 0.0, 1.0)
        excess = np.where(stable, n - traffic, 0.0)
        sl = np.where(stable, 1.0 - p_wait * np.exp(-excess * threshold_seconds / aht_seconds), 0.0)
        asa = np.where(stable, p_wait * aht_seconds / np.where(stable, excess, 1.0), np.inf)
    return p_wait, np.clip(sl, 0.0, 1.0), asa


def erlang_b_direct(n: IntArray, traffic: FloatArray) -> FloatArray:
    """Erlang B without the recursion: pmf(n) / cdf(n) of Poisson(A), in logs. Accurate where
    the Poisson cdf does not underflow (n above A - 20 sqrt(A); the staffing search takes it
    at n >= floor(A) only)."""
    n = np.asarray(n, dtype=np.int64)
    nf = n.astype(np.float64)
    with np.errstate(divide="ignore"):
        log_b = (
            nf * np.log(traffic)
            - traffic
            - gammaln(nf + 1.0)
            - np.log(gammaincc(nf + 1.0, traffic))
        )
    b: FloatArray = np.where(n <= 0, 1.0, np.exp(np.minimum(log_b, 0.0)))
    return b


def erlang_c_required(
    volume: FloatArray,
    aht_seconds: FloatArray,
    interval_seconds: float,
    target: Target,
    *,
    servers_per_agent: int = 1,
) -> Staffing:
    """The fewest agents per cell meeting every target (Erlang C); with `servers_per_agent`
    (chat concurrency) each agent is that many servers of an M/M/(N c) queue.

    All cells step through n = 1, 2, ... together with the Erlang B recursion
    B(n) = A B(n-1) / (n + A B(n-1)) (values in (0, 1]: no overflow, no cancellation); a cell
    is tested from its exact stability / occupancy minimum on and leaves once it meets the
    targets."""
    volume = np.asarray(volume, dtype=np.float64)
    shape = volume.shape
    aht = np.broadcast_to(np.asarray(aht_seconds, dtype=np.float64), shape).ravel()
    vol = volume.ravel()
    c = servers_per_agent
    traffic = vol * aht / interval_seconds
    stable_min, occ_min = min_agents_exact(vol, aht, interval_seconds, target.max_occupancy)
    # The first number of servers worth testing: stable, within the occupancy cap, whole agents.
    first = np.maximum(np.maximum(stable_min, occ_min * c), 1)
    first = -(-first // c) * c
    found = np.zeros(vol.size, dtype=np.int64)
    found_b = np.ones(vol.size)
    ids = np.flatnonzero(traffic > 0)
    a = traffic[ids]
    h = aht[ids]
    # Each cell starts just below its first candidate, with B taken there directly:
    # B(n, A) = Poisson(n; A) / P(Poisson(A) <= n), in logs (no e^-A underflow at 20,000 Erlangs).
    n = first[ids] - 1
    b = erlang_b_direct(n, a)
    sl_target, t = target.service_level, target.service_level_seconds
    asa_target = target.max_asa_seconds
    step = 0
    while ids.size:
        step += 1
        n = n + 1
        ab = a * b
        b = ab / (n + ab)
        if (step - 1) % c:  # n = first - 1 + step: a whole number of agents every c steps
            continue
        p_wait = n * b / (n - a * (1.0 - b))
        ok = np.ones(b.size, dtype=bool)
        if sl_target > 0:
            ok &= 1.0 - p_wait * np.exp(-(n - a) * t / h) >= sl_target
        if asa_target > 0:
            ok &= p_wait * h / (n - a) <= asa_target
        if not ok.any():
            continue
        found[ids[ok]] = n[ok] // c
        found_b[ids[ok]] = b[ok]
        keep = ~ok
        ids, a, h, n, b = ids[keep], a[keep], h[keep], n[keep], b[keep]
    agents = found.reshape(shape)
    servers = (found * c).astype(np.float64)
    idle = found == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        p_wait = np.where(idle, 0.0, servers * found_b / (servers - traffic * (1.0 - found_b)))
        excess = np.where(idle, 1.0, servers - traffic)
        sl = np.where(idle, 1.0, 1.0 - p_wait * np.exp(-excess * t / aht))
        asa = np.where(idle, 0.0, p_wait * aht / excess)
        occupancy = np.where(idle, 0.0, traffic / np.maximum(servers, 1.0))
    return Staffing(
        agents=agents,
        service_level=np.clip(sl, 0.0, 1.0).reshape(shape),
        asa_seconds=asa.reshape(shape),
        abandon_rate=np.zeros(shape),
        occupancy=occupancy.reshape(shape),
        traffic=traffic.reshape(shape),
    )


# --- Erlang A ----------------------------------------------------------------------------------


def erlang_a_metrics(
    agents: IntArray,
    volume: FloatArray,
    aht_seconds: FloatArray,
    patience_seconds: FloatArray,
    interval_seconds: float,
    threshold_seconds: float,
    log_inv_b: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(service level, ASA of answered seconds, abandon rate, occupancy) per cell of M/M/N+M.

    Cells are evaluated in blocks of similar length of the waiting-customer sum; `log_inv_b`
    (log 1/B(N, A) per cell) may be given when known."""
    agents = np.asarray(agents, dtype=np.int64)
    volume = np.asarray(volume, dtype=np.float64)
    shape = volume.shape
    n = agents.ravel()
    vol = volume.ravel()
    aht = np.broadcast_to(np.asarray(aht_seconds, dtype=np.float64), shape).ravel()
    patience = np.broadcast_to(np.asarray(patience_seconds, dtype=np.float64), shape).ravel()
    y = vol / interval_seconds * patience
    x = n * patience / aht
    if log_inv_b is None:
        traffic = vol * aht / interval_seconds
        log_inv_b = log_inv_erlang_b(n, np.where(traffic > 0, traffic, 1.0))
    lib_all = np.asarray(log_inv_b, dtype=np.float64).ravel()
    span = np.maximum(0.0, y - x) + _TAIL_SIGMAS * np.sqrt(np.maximum(y, 1.0))
    order = np.argsort(span, kind="stable")
    outs = [np.empty(vol.size) for _ in range(4)]
    for block in np.array_split(order, max(1, vol.size // _BLOCK)):
        if block.size == 0:
            continue
        parts = _erlang_a_block(
            n[block],
            vol[block],
            aht[block],
            patience[block],
            interval_seconds,
            threshold_seconds,
            lib_all[block],
        )
        for out, part in zip(outs, parts, strict=True):
            out[block] = part
    sl, asa, ab, occ = (o.reshape(shape) for o in outs)
    return sl, asa, ab, occ


def _erlang_a_block(
    agents: IntArray,
    volume: FloatArray,
    aht_seconds: FloatArray,
    patience_seconds: FloatArray,
    interval_seconds: float,
    threshold_seconds: float,
    lib: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    agents = np.asarray(agents, dtype=np.int64)
    volume = np.asarray(volume, dtype=np.float64)
    shape = volume.shape
    aht = np.broadcast_to(np.asarray(aht_seconds, dtype=np.float64), shape).ravel()
    patience = np.broadcast_to(np.asarray(patience_seconds, dtype=np.float64), shape).ravel()
    n = agents.ravel().astype(np.float64)
    lam = volume.ravel() / interval_seconds
    traffic = lam * aht
    theta = 1.0 / patience
    x = n * patience / aht  # N mu / theta
    y = lam * patience  # lambda / theta

    span = np.maximum(0.0, y - x) + _TAIL_SIGMAS * np.sqrt(np.maximum(y, 1.0)) + 30.0
    j_max = int(np.ceil(span.max(initial=1.0)))
    j = np.arange(j_max, dtype=np.float64)[None, :]  # customers waiting ahead
    xc, yc = x[:, None], y[:, None]
    log_y = np.log(np.maximum(yc, 1e-300))
    # log r_j = j log y - log prod_{i=1..j} (x + i)
    # log Gamma(x + 1 + j) - log Gamma(x + 1): both sums below use it
    lg_rise = gammaln(xc + j + 1.0) - gammaln(xc + 1.0)
    log_r = j * log_y - lg_rise
    log_wait_mass = np.logaddexp.reduce(log_r, axis=1)
    # sum_{k<N} pi_k / pi_N = 1/B - 1  (log, with 1/B >= 1)
    with np.errstate(divide="ignore"):
        log_no_wait_mass = lib + np.log(-np.expm1(-lib))
    log_z = np.logaddexp(log_no_wait_mass, log_wait_mass)
    log_w = log_r - log_z[:, None]
    w = np.exp(log_w)
    p_served_j = xc / (xc + j + 1.0)
    # 1 - I_u(x + 1, j + 1), I as the negative binomial sum of k = 0..j, in log space.
    a = xc + 1.0
    log_u = -(theta * threshold_seconds)[:, None]
    with np.errstate(divide="ignore"):
        log_1mu = np.log(-np.expm1(log_u))
    log_terms = lg_rise - gammaln(j + 1.0) + a * log_u + j * log_1mu
    log_terms = np.where(np.isnan(log_terms), -np.inf, log_terms)
    cdf = np.exp(np.minimum(np.logaddexp.accumulate(log_terms, axis=1), 0.0))
    within = w * p_served_j * (1.0 - cdf)
    p_no_wait = np.exp(log_no_wait_mass - log_z)
    sl = p_no_wait + within.sum(axis=1)
    p_abandon = (w * (1.0 - p_served_j)).sum(axis=1)
    # Mean wait of an answered customer who found j waiting: sum_{k=1..j+1} 1/(theta (x + k))
    mean_stage = np.cumsum(1.0 / (xc + j + 1.0), axis=1) / theta[:, None]
    answered = 1.0 - p_abandon
    waited = (w * p_served_j * mean_stage).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        asa = np.where(answered > 0, waited / answered, np.inf)
        occupancy = np.where(n > 0, traffic * answered / np.maximum(n, 1.0), 0.0)
    idle = lam <= 0
    sl = np.where(idle, 1.0, np.where(n <= 0, 0.0, sl))
    p_abandon = np.where(idle, 0.0, np.where(n <= 0, 1.0, p_abandon))
    asa = np.where(idle, 0.0, asa)
    return (
        np.clip(sl, 0.0, 1.0).reshape(shape),
        asa.reshape(shape),
        np.clip(p_abandon, 0.0, 1.0).reshape(shape),
        occupancy.reshape(shape),
    )


class _LogInvBTable:
    """log(1/B(n, A)) for n = 0..top of every cell, extended on demand (one recursion step
    for all cells at a time)."""

    def __init__(self, traffic: FloatArray) -> None:
        self._log_a = np.log(traffic)
        self._rows: list[FloatArray] = [np.zeros(traffic.size)]

    def lookup(self, n: IntArray, idx: IntArray) -> FloatArray:
        top = int(n.max(initial=0))
        while len(self._rows) <= top:
            k = len(self._rows)
            self._rows.append(_log_inv_erlang_b_step(self._rows[-1], float(k), self._log_a))
        out = np.empty(n.size)
        for value in np.unique(n):
            mask = n == value
            out[mask] = self._rows[int(value)][idx[mask]]
        return out


def erlang_a_required(
    volume: FloatArray,
    aht_seconds: FloatArray,
    patience_seconds: float,
    interval_seconds: float,
    target: Target,
) -> Staffing:
    """The fewest agents per cell meeting every target under Erlang A (binary search per cell,
    all cells at once)."""
    volume = np.asarray(volume, dtype=np.float64)
    shape = volume.shape
    aht = np.broadcast_to(np.asarray(aht_seconds, dtype=np.float64), shape).ravel()
    vol = volume.ravel()
    patience = np.full(vol.shape, float(patience_seconds))
    _, occ_min = min_agents_exact(vol, aht, interval_seconds, target.max_occupancy)
    traffic = vol * aht / interval_seconds

    table = _LogInvBTable(np.where(traffic > 0, traffic, 1.0))

    def meets(n: IntArray, idx: IntArray) -> npt.NDArray[np.bool_]:
        sl, asa, ab, _ = erlang_a_metrics(
            n,
            vol[idx],
            aht[idx],
            patience[idx],
            interval_seconds,
            target.service_level_seconds,
            table.lookup(n, idx),
        )
        ok = n >= np.maximum(occ_min[idx], 1)
        if target.service_level > 0:
            ok &= sl >= target.service_level
        if target.max_asa_seconds > 0:
            ok &= asa <= target.max_asa_seconds
        if target.max_abandon_rate > 0:
            ok &= ab <= target.max_abandon_rate
        return ok

    busy = np.flatnonzero(vol > 0)
    lo = np.zeros(vol.size, dtype=np.int64)  # fails (0 agents never serve)
    hi = np.maximum(np.ceil(traffic + 3.0 * np.sqrt(traffic) + 3.0).astype(np.int64), occ_min)
    # Grow hi until it meets the targets.
    pending = busy
    for _ in range(60):
        if pending.size == 0:
            break
        ok = meets(hi[pending], pending)
        bad = pending[~ok]
        lo[bad] = hi[bad]
        hi[bad] = hi[bad] * 2 + 1
        pending = bad
    # Bracket near the answer: most cells need about A agents, minus a few for abandonment.
    guess = np.maximum(0, np.floor(traffic - 2.0 * np.sqrt(traffic)).astype(np.int64))
    probe = busy[(guess[busy] > lo[busy]) & (guess[busy] < hi[busy])]
    if probe.size:
        ok = meets(guess[probe], probe)
        hi[probe[ok]] = guess[probe[ok]]
        lo[probe[~ok]] = guess[probe[~ok]]
    # Binary search: lo fails, hi meets.
    searching = busy[hi[busy] - lo[busy] > 1]
    while searching.size:
        mid = (lo[searching] + hi[searching]) // 2
        ok = meets(mid, searching)
        hi[searching[ok]] = mid[ok]
        lo[searching[~ok]] = mid[~ok]
        searching = searching[hi[searching] - lo[searching] > 1]
    agents = np.where(vol > 0, hi, 0).astype(np.int64)
    sl, asa, ab, occ = erlang_a_metrics(
        agents, vol, aht, patience, interval_seconds, target.service_level_seconds
    )
    return Staffing(
        agents=agents.reshape(shape),
        service_level=sl.reshape(shape),
        asa_seconds=asa.reshape(shape),
        abandon_rate=ab.reshape(shape),
        occupancy=occ.reshape(shape),
        traffic=traffic.reshape(shape),
    )


# --- deferred work and shrinkage -----------------------------------------------------------------


def deferred_required(
    volume: FloatArray,
    aht_seconds: FloatArray,
    interval_seconds: float,
    response_time_seconds: float,
    initial_backlog: float = 0.0,
) -> tuple[IntArray, FloatArray]:
    """Email and other deferred work: agents per interval so that every item is answered
    within the response-time target (first in, first out), spreading the open work evenly
    over the target window. Returns (agents, backlog at each interval's end)."""
    vol = np.asarray(volume, dtype=np.float64)
    aht = np.broadcast_to(np.asarray(aht_seconds, dtype=np.float64), vol.shape)
    window = max(1, math.ceil(response_time_seconds / interval_seconds))
    agents = np.zeros(vol.shape, dtype=np.int64)
    backlog_end = np.zeros(vol.shape, dtype=np.float64)
    # Open items by the interval they arrived in (their deadline is arrival + window).
    open_items: list[list[float]] = [[float(initial_backlog), 0.0]]  # [count, arrived index]
    for i in range(vol.size):
        open_items.append([float(vol[i]), float(i)])
        due = sum(c for c, arrived in open_items if arrived + window - 1 <= i)
        total = sum(c for c, _ in open_items)
        work_items = max(due, total / window)
        need = work_items * float(aht[i]) / interval_seconds
        agents[i] = math.ceil(need - 1e-9) if need > 0 else 0
        capacity = agents[i] * interval_seconds / float(aht[i]) if aht[i] > 0 else total
        remaining: list[list[float]] = []
        for count, arrived in open_items:
            take = min(count, capacity)
            capacity -= take
            if count - take > 1e-9:
                remaining.append([count - take, arrived])
        open_items = remaining
        backlog_end[i] = sum(c for c, _ in open_items)
    return agents, backlog_end


def with_shrinkage(agents: IntArray, shrinkage: float) -> IntArray:
    """Agents to schedule so that `agents` are on the phones: ceil(N / (1 - s)), exactly."""
    if not 0 <= shrinkage < 1:
        raise ValueError("shrinkage must be in [0, 1)")
    keep = 1 - exact_fraction(shrinkage)
    flat = np.asarray(agents, dtype=np.int64).ravel()
    out = np.array([math.ceil(Fraction(int(v)) / keep) for v in flat], dtype=np.int64)
    return out.reshape(np.shape(agents))
