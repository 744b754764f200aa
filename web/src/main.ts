// Live dashboard for batch-scaler over gRPC-Web, served by the service itself (same origin),
// code generated from the service's proto. Views: the overview (#/), one HRA (#/ns/name) and
// the routing debugger (#/route). Cost per open tab: a WatchBatches and a WatchTargets stream
// (every HRA once, then only changes), GetStats every 2 s, and GetTarget and GetJobStats every
// 2 s while an HRA is shown. The HRA list is windowed: only the rows in view are in the DOM.
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { durationMs, timestampDate, type Duration } from "@bufbuild/protobuf/wkt";
import {
  BatchScaler, Outcome, type BatchResult, type DurationSummary, type JobStats, type Stats, type Target,
} from "./gen/batchscaler/v1/batchscaler_pb";
import { reservedChart, timeline } from "./charts";
import { ageTag, clock, esc, fullDate, plural, rate, seconds, tickAges, zoneName } from "./format";
import { History, Results } from "./state";

const $ = (id: string) => document.getElementById(id)!;
const TOKEN_KEY = "batch-scaler-token";
const POLL_MS = 2000;

const auth: Interceptor = (next) => async (req) => {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};
const client = createClient(
  BatchScaler,
  createGrpcWebTransport({ baseUrl: location.origin, interceptors: [auth] }),
);

const targets = new Map<string, Target>();
const results = new Results();
const history = new History();
let missedTotal = 0;
let nsFilter = "";
let shown: Target | undefined; // the HRA of the detail view, as last read
let shownJobs: JobStats | undefined; // its job ledger figures

// The overview's filter and order live in the URL's query (`?ns=&q=&sort=&dir=`), so a link
// reproduces the view.
type SortKey = "name" | "reserved" | "reservations" | "waiting" | "last" | "wait" | "utilization";
const SORT_KEYS: SortKey[] = ["name", "reserved", "reservations", "waiting", "last", "wait", "utilization"];
const params = new URLSearchParams(location.search);
let nameFilter = params.get("q") ?? "";
let sortKey: SortKey = SORT_KEYS.find((k) => k === params.get("sort")) ?? "name";
let sortDesc = params.get("dir") === "desc";
nsFilter = params.get("ns") ?? "";

function saveViewInUrl() {
  const p = new URLSearchParams();
  if (nsFilter) p.set("ns", nsFilter);
  if (nameFilter) p.set("q", nameFilter);
  if (sortKey !== "name") p.set("sort", sortKey);
  if (sortDesc) p.set("dir", "desc");
  const query = p.toString();
  window.history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
}

const keyOf = (ns: string, name: string) => `${ns}/${name}`;
const outcomeName = (o: Outcome) => Outcome[o]?.replace("OUTCOME_", "") ?? "UNSPECIFIED";
const visible = (ns: string) => !nsFilter || ns === nsFilter;
const at = (r: BatchResult) => (r.at ? timestampDate(r.at) : new Date());
const hraLink = (ns: string, name: string) =>
  `<a href="#/${encodeURIComponent(ns)}/${encodeURIComponent(name)}">${esc(keyOf(ns, name))}</a>`;

// ---- views and routing -------------------------------------------------------------------

type View = { kind: "overview" } | { kind: "route" } | { kind: "hra"; ns: string; name: string };

function currentView(): View {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 2) return { kind: "hra", ns: parts[0], name: parts[1] };
  if (parts[0] === "route") return { kind: "route" };
  return { kind: "overview" };
}

function show() {
  const view = currentView();
  for (const id of ["overview", "detail", "route"]) $(id).hidden = true;
  document.querySelectorAll("nav a").forEach((a) => a.removeAttribute("aria-current"));
  if (view.kind === "hra") {
    $("detail").hidden = false;
    shown = targets.get(keyOf(view.ns, view.name));
    shownJobs = undefined;
    renderJobs();
    $("detail-title").textContent = keyOf(view.ns, view.name);
    document.title = `${keyOf(view.ns, view.name)} · batch-scaler`;
    renderDetail();
    refreshDetail();
  } else {
    $(view.kind).hidden = false;
    document.querySelector(`nav a[href="#/${view.kind === "route" ? "route" : ""}"]`)?.setAttribute("aria-current", "page");
    document.title = "batch-scaler";
  }
}

// ---- overview ----------------------------------------------------------------------------

function lastCell(k: string): string {
  // The newest of what the page saw and what the service keeps per HRA (Target.lastBatch),
  // so an HRA whose last batch came before the page opened still shows it.
  const r = lastOf(k);
  if (!r) return `<span class="meta">—</span>`;
  const o = outcomeName(r.outcome);
  return `<span class="badge ${o}">${o}</span> ${ageTag(at(r))}`;
}

/** The newest of the last batch the page saw and the one the service keeps. */
function lastOf(k: string): BatchResult | undefined {
  const seen = results.of(k)[0];
  const kept = targets.get(k)?.lastBatch;
  return seen && kept ? (at(seen) >= at(kept) ? seen : kept) : seen ?? kept;
}

/** Why an HRA needs someone's attention, in words, or nothing. */
function attentionReason(t: Target): string | undefined {
  const r = lastOf(keyOf(t.namespace, t.name));
  if (r && (r.outcome === Outcome.FAILED || r.outcome === Outcome.RETRYING)) {
    const what = r.outcome === Outcome.FAILED ? "last batch failed" : "last batch is retrying";
    return r.error ? `${what}: ${r.error}` : what;
  }
  const waiting = t.reservedReplicas;
  if (t.maxReplicas !== undefined && waiting > t.maxReplicas) {
    return `${plural(waiting, "job")} reserved, more than maxReplicas ${t.maxReplicas}: ${waiting - t.maxReplicas} wait for a runner`;
  }
  if (t.jobsExpiredBeforeStart > 0n) {
    return `${plural(t.jobsExpiredBeforeStart, "job")} lost their reservation before they started: ` +
      "raise the trigger duration, or run with --reservation-clock started";
  }
  return undefined;
}

function renderAttention() {
  const items = [...targets.values()]
    .filter((t) => visible(t.namespace))
    .map((t) => ({ t, why: attentionReason(t) }))
    .filter((x) => x.why)
    .sort((a, b) => keyOf(a.t.namespace, a.t.name).localeCompare(keyOf(b.t.namespace, b.t.name)));
  $("attention").innerHTML = items.length
    ? `<ul>${items.map(({ t, why }) => `<li data-hra="${esc(keyOf(t.namespace, t.name))}">${hraLink(t.namespace, t.name)} <span class="err">${esc(why!)}</span></li>`).join("")}</ul>`
    : `<p class="meta">Nothing needs attention.</p>`;
}

/** The time of an HRA's last batch (0 when none), for sorting. */
function lastAt(k: string): number {
  const r = lastOf(k);
  return r ? at(r).getTime() : 0;
}

/** The p90 of an HRA's job waits in seconds (-1 when unknown), for sorting. */
const waitP90 = (t: Target) => (t.jobWaitP90 ? durationMs(t.jobWaitP90) / 1000 : -1);

function compareTargets(a: Target, b: Target): number {
  const ka = keyOf(a.namespace, a.name);
  const kb = keyOf(b.namespace, b.name);
  const by: Record<SortKey, number> = {
    name: 0,
    reserved: a.reservedReplicas - b.reservedReplicas,
    reservations: a.reservationUnits - b.reservationUnits,
    waiting: a.jobsWaiting - b.jobsWaiting,
    last: lastAt(ka) - lastAt(kb),
    wait: waitP90(a) - waitP90(b),
    utilization: (a.utilization ?? -1) - (b.utilization ?? -1),
  };
  const order = by[sortKey] || (ka < kb ? -1 : ka > kb ? 1 : 0);
  return sortDesc ? -order : order;
}

function renderTargets() {
  const now = Date.now();
  const needle = nameFilter.toLowerCase();
  const matching = [...targets.values()]
    .filter((t) => visible(t.namespace))
    .filter((t) => !needle || keyOf(t.namespace, t.name).toLowerCase().includes(needle))
    .sort(compareTargets);
  $("count").textContent = `${plural(matching.length, "HRA")}${matching.length === targets.size ? "" : ` of ${targets.size}`}`;
  document.querySelectorAll("#overview th[data-sort]").forEach((th) =>
    th.setAttribute("aria-sort", th.getAttribute("data-sort") !== sortKey ? "none" : sortDesc ? "descending" : "ascending"),
  );
  rowsInView = matching;
  renderRows();
  renderAttention();
}

/** Height of one row of the HRA list (fixed, so the window's place follows the scroll). */
const ROW_PX = 41;
/** Rows rendered beyond the view, above and below. */
const MARGIN_ROWS = 10;
let rowsInView: Target[] = [];

/** Renders the rows of the list in view (plus a margin), between two spacers. */
function renderRows() {
  const box = $("targets-box");
  const now = Date.now();
  const first = Math.max(0, Math.floor(box.scrollTop / ROW_PX) - MARGIN_ROWS);
  const shown = Math.ceil(box.clientHeight / ROW_PX) + 2 * MARGIN_ROWS;
  const last = Math.min(rowsInView.length, first + shown);
  // Sized below through the CSSOM: the page's CSP refuses inline style attributes.
  const spacer = (rows: number) =>
    rows > 0 ? `<tr class="spacer" aria-hidden="true" data-rows="${rows}"><td colspan="9"></td></tr>` : "";
  const rows = rowsInView.slice(first, last)
    .map((t) => {
      const k = keyOf(t.namespace, t.name);
      return `<tr data-hra="${esc(k)}"><td>${hraLink(t.namespace, t.name)}</td><td class="num reserved">${t.reservedReplicas}</td>
        <td class="num">${t.minReplicas ?? "—"} / ${t.maxReplicas ?? "∞"}</td>
        <td class="num">${t.reservationUnits}</td><td class="num waiting">${t.jobsWaiting}</td><td>${lastCell(k)}</td>
        <td class="num wait">${t.jobWaitP90 ? seconds(waitP90(t)) : "—"}</td>
        <td class="num utilization">${t.utilization !== undefined ? `${Math.round(100 * t.utilization)}%` : "—"}</td>
        <td class="chart-cell">${reservedChart(history.of(k), now, true)}</td></tr>`;
    });
  $("targets").innerHTML = rowsInView.length
    ? spacer(first) + rows.join("") + spacer(rowsInView.length - last)
    : `<tr><td colspan="9" class="meta">no HRAs</td></tr>`;
  document.querySelectorAll<HTMLTableRowElement>("#targets tr.spacer").forEach((tr) => {
    tr.style.height = `${Number(tr.dataset.rows) * ROW_PX}px`;
  });
}

function card(r: BatchResult, withName: boolean): string {
  const o = outcomeName(r.outcome);
  const k = keyOf(r.namespace, r.name);
  const err = r.error ? `<div class="err">${esc(r.error)}</div>` : "";
  const missed = r.missed > 0n ? `<div class="missed">missed ${plural(r.missed, "result")} before this one</div>` : "";
  // What GitHub, not a producer, caused: failed webhook deliveries recovered, and
  // completions of jobs GitHub reports finished.
  const causes = [
    r.recovered > 0 ? `<span class="cause recovered" title="events recovered from failed webhook deliveries">recovered ${r.recovered}</span>` : "",
    r.verified > 0 ? `<span class="cause verified" title="completions of reserved jobs GitHub reports finished">verified ${r.verified}</span>` : "",
    r.warmAdded + r.warmClaimed + r.warmExpired > 0
      ? `<span class="cause warm" title="warm reservations (--warm-runners forecast): added · claimed by a queued job · expired unclaimed">warm +${r.warmAdded} · claimed ${r.warmClaimed} · unclaimed ${r.warmExpired}</span>` : "",
  ].join("");
  return `<li class="${o}" data-hra="${esc(k)}"><span class="badge ${o}">${o}</span>
    <div class="body">${withName ? `<b>${hraLink(r.namespace, r.name)}</b> ` : ""}<span class="meta">${plural(r.events, "event")} · attempt ${r.attempt}</span>${causes}
    <div class="meta counts">before ${r.before} · expired ${r.expired} · added ${r.added} · completed ${r.completed} · after ${r.after}</div>${err}${missed}</div>
    <span class="when"><span class="clock" title="${fullDate(at(r))}">${clock(at(r))}</span> ${ageTag(at(r))}</span></li>`;
}

function renderFeed() {
  $("feed").innerHTML = results.feed.filter((r) => visible(r.namespace)).map((r) => card(r, true)).join("") ||
    `<li class="meta empty">No batches yet.</li>`;
  $("missed").textContent = missedTotal > 0 ? `(missed ${plural(missedTotal, "result")}: too slow to keep up)` : "";
}

// ---- one HRA -----------------------------------------------------------------------------

function renderDetail() {
  const view = currentView();
  if (view.kind !== "hra") return;
  const k = keyOf(view.ns, view.name);
  const t = shown;
  if (!t) {
    $("detail-facts").innerHTML = `<p class="meta">Loading…</p>`;
  } else {
    const trigger = t.triggerDuration ? seconds(durationMs(t.triggerDuration) / 1000) : "— (server default)";
    const backlog = t.maxReplicas !== undefined ? Math.max(0, t.reservationUnits - t.maxReplicas) : 0;
    $("detail-facts").innerHTML = `<dl class="facts">
      <div><dt>reserved now</dt><dd class="reserved">${t.reservedReplicas}</dd></div>
      <div><dt>min / max replicas</dt><dd>${t.minReplicas ?? "—"} / ${t.maxReplicas ?? "∞"}</dd></div>
      <div><dt>reservations</dt><dd class="count">${t.reservationUnits}</dd></div>
      <div><dt>backlog (beyond max)</dt><dd>${backlog}</dd></div>
      <div><dt>trigger duration</dt><dd>${trigger}</dd></div></dl>`;
    const bars = t.capacityReservations.map((r) => ({
      // A grouped reservation's name is its jobs' ids, encoded: say what it holds instead.
      name: r.groupedJobs > 0 || r.name.startsWith("g1:") ? `${plural(r.replicas, "job")} waiting, grouped` : r.name,
      start: r.effectiveTime ? timestampDate(r.effectiveTime) : new Date(0),
      end: r.expirationTime ? timestampDate(r.expirationTime) : new Date(0),
      replicas: r.replicas,
    }));
    $("timeline").innerHTML = timeline(bars, t.maxReplicas, new Date());
  }
  $("chart").innerHTML = reservedChart(history.of(k), Date.now());
  $("detail-feed").innerHTML = results.of(k).map((r) => card(r, false)).join("") ||
    `<li class="meta empty">No batches for this HRA since the page opened.</li>`;
}

async function refreshDetail() {
  const view = currentView();
  if (view.kind !== "hra") return;
  const ref = { namespace: view.ns, name: view.name };
  const [target, jobs] = await Promise.allSettled([client.getTarget(ref), client.getJobStats(ref)]);
  if (target.status === "fulfilled") {
    shown = target.value;
    $("detail-error").textContent = "";
  } else {
    shown = undefined;
    $("detail-error").textContent = `GetTarget failed: ${(target.reason as Error).message}`;
  }
  shownJobs = jobs.status === "fulfilled" ? jobs.value : undefined;
  renderDetail();
  renderJobs(jobs.status === "rejected" ? (jobs.reason as Error).message : undefined);
}

const secs = (d: Duration | undefined) => (d ? seconds(durationMs(d) / 1000) : "—");

function durations(label: string, d: DurationSummary | undefined): string {
  const n = d ? Number(d.count) : 0;
  const value = n === 0 ? "—" : `${secs(d!.p50)} / ${secs(d!.p90)} / ${secs(d!.p99)}`;
  return `<div><dt>${label} p50 / p90 / p99</dt><dd class="${label}">${value}</dd></div>`;
}

// The job ledger: waits, runs, utilization, reservations that ended too soon, the advice.
function renderJobs(error?: string) {
  const j = shownJobs;
  if (!j) {
    $("detail-jobs").innerHTML = `<p class="meta">${error ? `GetJobStats failed: ${esc(error)}` : "Loading…"}</p>`;
    return;
  }
  const utilization = j.reservedRunnerSeconds > 0
    ? `${Math.round((100 * j.busyRunnerSeconds) / j.reservedRunnerSeconds)}%` : "—";
  const expired = Number(j.expiredBeforeStart + j.expiredWhileRunning);
  const since = j.since ? timestampDate(j.since) : new Date();
  $("detail-jobs").innerHTML = `<dl class="facts jobs">
      <div><dt>waiting · running</dt><dd class="jobs-now">${j.jobsWaiting} · ${j.jobsRunning}</dd></div>
      <div><dt>completed</dt><dd>${j.jobsCompleted}</dd></div>
      ${durations("wait", j.wait)}${durations("run", j.run)}
      <div><dt>utilization (busy / reserved runner-time)</dt><dd class="utilization"
        title="${Math.round(j.busyRunnerSeconds)} s busy of ${Math.round(j.reservedRunnerSeconds)} s reserved">${utilization}</dd></div>
      <div><dt>reservations expired before start · while running</dt><dd class="expired ${expired > 0 ? "bad" : ""}">${j.expiredBeforeStart} · ${j.expiredWhileRunning}</dd></div>
      <div><dt>warm reservations claimed · expired unclaimed</dt><dd class="warm ${j.warmExpiredUnclaimed > j.warmClaimed ? "bad" : ""}">${j.warmClaimed} · ${j.warmExpiredUnclaimed}</dd></div>
      <div><dt>suggested duration</dt><dd>${secs(j.suggestedDuration)}</dd></div></dl>
    <p class="advice">${esc(j.advice)}</p>
    <p class="meta">Since <span title="${fullDate(since)}">${clock(since)}</span>, from GitHub's job times.</p>`;
}

// ---- routing debugger ---------------------------------------------------------------------

async function routeJob(ev: Event) {
  ev.preventDefault();
  const f = new FormData(ev.target as HTMLFormElement);
  const text = (name: string) => String(f.get(name) ?? "").trim();
  const out = $("route-answer");
  try {
    const r = await client.routeJob({
      action: text("action"),
      repository: text("repository"),
      ownerType: text("owner_type"),
      enterprise: text("enterprise"),
      labels: text("labels").split(",").map((l) => l.trim()).filter(Boolean),
      jobId: text("job_id"),
    });
    const target = r.target ? hraLink(r.target.namespace, r.target.name) : `<span class="none">no HRA</span>`;
    const also = r.alsoMatched.length
      ? r.alsoMatched.map((t) => hraLink(t.namespace, t.name)).join(", ") : "—";
    out.innerHTML = `<dl class="facts answer ${r.target ? "matched" : "unmatched"}">
      <div><dt>target</dt><dd class="target">${target}</dd></div>
      <div><dt>amount</dt><dd class="amount">${r.amount > 0 ? "+" : ""}${r.amount}</dd></div>
      <div><dt>duration</dt><dd>${r.duration ? seconds(durationMs(r.duration) / 1000) : "—"}</dd></div>
      <div><dt>also matched</dt><dd>${also}</dd></div></dl>
      <p class="reason">${esc(r.reason)}</p>`;
  } catch (e) {
    out.innerHTML = `<p class="err">${esc((e as Error).message)}</p>`;
  }
}

// ---- health strip --------------------------------------------------------------------------

let previous: Stats | undefined;

function tile(label: string, value: string, cls = ""): string {
  return `<div class="tile ${cls}"><span class="value">${value}</span><span class="label">${label}</span></div>`;
}

function renderHealth(s: Stats) {
  const p = previous && previous.started?.seconds === s.started?.seconds ? previous : undefined;
  const dt = p?.at && s.at ? (timestampDate(s.at).getTime() - timestampDate(p.at).getTime()) / 1000 : 0;
  const per = (now: bigint, before: bigint | undefined) =>
    dt > 0 && before !== undefined ? Number(now - before) / dt : 0;
  const failed = per(s.batchesFailed, p?.batchesFailed);
  const retrying = per(s.batchesRetrying, p?.batchesRetrying);
  const p50 = s.applyLatencyP50 ? durationMs(s.applyLatencyP50) / 1000 : 0;
  const p99 = s.applyLatencyP99 ? durationMs(s.applyLatencyP99) / 1000 : 0;
  $("health").innerHTML = [
    tile("events in /s", rate(per(s.eventsAccepted, p?.eventsAccepted))),
    tile("applied /s", rate(per(s.batchesApplied, p?.batchesApplied))),
    tile("retrying /s", rate(retrying), retrying > 0 ? "warn" : ""),
    tile("failed /s", rate(failed), failed > 0 ? "bad" : ""),
    tile("conflicts /s", rate(per(s.writeConflicts, p?.writeConflicts))),
    tile("pending HRAs", String(s.pendingHras), s.pendingHras > 0 ? "busy" : ""),
    tile("pending events", String(s.pendingEvents)),
    tile("applies in flight", String(s.appliesInFlight)),
    tile("apply latency p50 / p99", p50 || p99 ? `${seconds(p50)} / ${seconds(p99)}` : "—"),
    tile("since start", `${s.batchesFailed} failed · ${s.retries} retries`),
    s.scaleOutOff
      ? tile("replicas · owned HRAs", `scale-out off: ${esc(s.scaleOutOff)}`, "warn")
      : tile("replicas · owned HRAs", `${s.members || 1} · ${s.ownedHras}`),
    tile("from GitHub: recovered · verified (ended)",
      `${s.deliveriesRecovered} · ${s.reservationsVerified} (${s.reservationsCompleted})`,
      s.deliveriesRecovered + s.reservationsCompleted > 0n ? "busy" : ""),
  ].join("");
  previous = s;
}

async function refreshHealth() {
  try {
    renderHealth(await client.getStats({}));
  } catch {
    // The status badge already says what is wrong.
  }
}

// ---- data --------------------------------------------------------------------------------

let targetsQueued = false;
/** Renders the list once per frame, however many updates came. */
function renderTargetsSoon() {
  if (targetsQueued) return;
  targetsQueued = true;
  requestAnimationFrame(() => {
    targetsQueued = false;
    renderTargets();
    if (currentView().kind === "hra") renderDetail();
  });
}

/** The HRAs: every one once, then only what changed (WatchTargets), reconnecting. */
async function watchTargetsForever() {
  let delay = 1;
  for (;;) {
    const abort = new AbortController();
    targetsAbort = abort;
    try {
      for await (const u of client.watchTargets({}, { signal: abort.signal })) {
        delay = 1;
        if (u.snapshot) targets.clear();
        const now = Date.now();
        for (const t of u.targets) {
          const k = keyOf(t.namespace, t.name);
          targets.set(k, t);
          history.add(k, now, t.reservedReplicas);
        }
        for (const r of u.removed) targets.delete(keyOf(r.namespace, r.name));
        renderTargetsSoon();
      }
    } catch (e) {
      if (!abort.signal.aborted) setStatus(false, `WatchTargets failed: ${(e as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, delay * 1000));
    delay = Math.min(delay * 2, 10);
  }
}
let targetsAbort: AbortController | undefined;

let refreshTimer: number | undefined;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = window.setTimeout(refreshDetail, 150);
}

function setStatus(live: boolean, text: string) {
  const el = $("status");
  el.className = live ? "live" : "down";
  el.textContent = text;
}

let renderQueued = false;
function onResult(r: BatchResult) {
  missedTotal += Number(r.missed);
  if (!results.add(keyOf(r.namespace, r.name), r)) return;
  // Many results at once render once per frame, not once each.
  if (!renderQueued) {
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      renderFeed();
      if (currentView().kind === "hra") renderDetail();
    });
  }
  refreshSoon();
}

let watchAbort: AbortController | undefined;
async function watchForever() {
  let delay = 1;
  for (;;) {
    watchAbort = new AbortController();
    try {
      const stream = client.watchBatches({ replay: 50 }, { signal: watchAbort.signal });
      setStatus(true, "live");
      for await (const r of stream) {
        delay = 1;
        onResult(r);
      }
      setStatus(false, "stream ended — reconnecting");
    } catch (e) {
      if (watchAbort.signal.aborted) continue;
      setStatus(false, `disconnected (${(e as Error).message}) — reconnecting in ${delay}s`);
    }
    await new Promise((r) => setTimeout(r, delay * 1000));
    delay = Math.min(delay * 2, 10);
  }
}

// ---- wiring ------------------------------------------------------------------------------

($("ns") as HTMLInputElement).value = nsFilter;
($("ns") as HTMLInputElement).addEventListener("input", (e) => {
  nsFilter = (e.target as HTMLInputElement).value.trim();
  saveViewInUrl();
  renderTargets();
  renderFeed();
});
($("q") as HTMLInputElement).value = nameFilter;
($("q") as HTMLInputElement).addEventListener("input", (e) => {
  nameFilter = (e.target as HTMLInputElement).value.trim();
  saveViewInUrl();
  renderTargets();
});
// A header sorts by its column; clicked again, the other way.
document.querySelectorAll("#overview th[data-sort] button").forEach((button) =>
  button.addEventListener("click", () => {
    const key = button.parentElement!.getAttribute("data-sort") as SortKey;
    sortDesc = key === sortKey ? !sortDesc : key !== "name";
    sortKey = key;
    saveViewInUrl();
    renderTargets();
  }),
);
($("token") as HTMLInputElement).value = sessionStorage.getItem(TOKEN_KEY) ?? "";
$("save").addEventListener("click", () => {
  const token = ($("token") as HTMLInputElement).value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  watchAbort?.abort();
  targetsAbort?.abort();
  refreshHealth();
});
$("route-form").addEventListener("submit", routeJob);
// A row is a link target too: a click anywhere on it opens the HRA.
$("targets").addEventListener("click", (e) => {
  const row = (e.target as Element).closest("tr[data-hra]");
  if (row && !(e.target as Element).closest("a")) location.hash = `#/${row.getAttribute("data-hra")}`;
});
window.addEventListener("hashchange", show);
$("zone").textContent = `times in ${zoneName()}`;
// For the browser test: how much the page holds.
(window as unknown as { dashboardSizes: () => object }).dashboardSizes = () => results.sizes();

show();
let rowsQueued = false;
const renderRowsSoon = () => {
  if (rowsQueued) return;
  rowsQueued = true;
  requestAnimationFrame(() => {
    rowsQueued = false;
    renderRows();
  });
};
$("targets-box").addEventListener("scroll", renderRowsSoon, { passive: true });
window.addEventListener("resize", renderRowsSoon);
watchTargetsForever();
refreshHealth();
setInterval(refreshHealth, POLL_MS);
setInterval(refreshDetail, POLL_MS);
setInterval(() => tickAges(), 1000);
watchForever();
