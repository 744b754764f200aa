// Live dashboard for batch-scaler: ListTargets + WatchBatches over gRPC-Web, served by the
// service itself (same origin), code generated from the service's proto.
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { BatchScaler, Outcome, type BatchResult, type Target } from "./gen/batchscaler/v1/batchscaler_pb";

const $ = (id: string) => document.getElementById(id)!;
const TOKEN_KEY = "batch-scaler-token";

const auth: Interceptor = (next) => async (req) => {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};
const client = createClient(
  BatchScaler,
  createGrpcWebTransport({ baseUrl: location.origin, interceptors: [auth] }),
);

type Last = { outcome: string; at: Date };
const targets = new Map<string, Target>();
const last = new Map<string, Last>();
const history = new Map<string, number[]>();
const feed: BatchResult[] = [];
const seen = new Set<string>();
let missedTotal = 0;
let nsFilter = "";

const keyOf = (ns: string, name: string) => `${ns}/${name}`;
const outcomeName = (o: Outcome) => Outcome[o]?.replace("OUTCOME_", "") ?? "UNSPECIFIED";
const visible = (ns: string) => !nsFilter || ns === nsFilter;
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

function ago(d: Date): string {
  const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

function spark(points: number[]): string {
  if (points.length < 2) return "";
  const w = 120, h = 24, max = Math.max(1, ...points);
  const xy = points.map((v, i) => `${((i / (points.length - 1)) * w).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`);
  return `<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><polyline points="${xy.join(" ")}"/></svg>`;
}

function renderTargets() {
  const rows = [...targets.values()]
    .filter((t) => visible(t.namespace))
    .map((t) => {
      const k = keyOf(t.namespace, t.name);
      const l = last.get(k);
      const lastCell = l ? `<span class="badge ${l.outcome}">${l.outcome}</span> <span class="meta">${ago(l.at)}</span>` : `<span class="meta">—</span>`;
      return `<tr data-hra="${esc(k)}"><td>${esc(k)}</td><td class="num reserved">${t.reservedReplicas}</td>
        <td class="num">${t.minReplicas ?? "—"} / ${t.maxReplicas ?? "∞"}</td>
        <td class="num">${t.capacityReservations.length}</td><td>${lastCell}</td><td>${spark(history.get(k) ?? [])}</td></tr>`;
    });
  $("targets").innerHTML = rows.join("") || `<tr><td colspan="6" class="meta">no HRAs</td></tr>`;
}

function renderFeed() {
  $("feed").innerHTML = feed
    .filter((r) => visible(r.namespace))
    .map((r) => {
      const o = outcomeName(r.outcome);
      const at = r.at ? timestampDate(r.at).toLocaleTimeString() : "";
      const err = r.error ? `<div class="err">${esc(r.error)}</div>` : "";
      const missed = r.missed > 0n ? `<div class="missed">missed ${r.missed} results before this one</div>` : "";
      return `<li class="${o}" data-hra="${esc(keyOf(r.namespace, r.name))}"><span class="badge ${o}">${o}</span>
        <b>${esc(keyOf(r.namespace, r.name))}</b> <span class="meta">${at} · attempt ${r.attempt} · ${r.events} events</span>
        <div class="meta">before ${r.before} · expired ${r.expired} · added ${r.added} · completed ${r.completed} · after ${r.after}</div>${err}${missed}</li>`;
    })
    .join("");
  $("missed").textContent = missedTotal > 0 ? `(missed ${missedTotal} — too slow to keep up)` : "";
}

async function refreshTargets() {
  try {
    const res = await client.listTargets({});
    targets.clear();
    for (const t of res.targets) {
      const k = keyOf(t.namespace, t.name);
      targets.set(k, t);
      const h = history.get(k) ?? [];
      h.push(t.reservedReplicas);
      if (h.length > 60) h.shift();
      history.set(k, h);
    }
    renderTargets();
  } catch (e) {
    setStatus(false, `ListTargets failed: ${(e as Error).message}`);
  }
}

let refreshTimer: number | undefined;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = window.setTimeout(refreshTargets, 150);
}

function setStatus(live: boolean, text: string) {
  const el = $("status");
  el.className = live ? "live" : "down";
  el.textContent = text;
}

function onResult(r: BatchResult) {
  const id = `${r.batchId}/${r.attempt}/${r.outcome}`;
  if (seen.has(id)) return;
  seen.add(id);
  missedTotal += Number(r.missed);
  feed.unshift(r);
  if (feed.length > 200) feed.pop();
  last.set(keyOf(r.namespace, r.name), { outcome: outcomeName(r.outcome), at: r.at ? timestampDate(r.at) : new Date() });
  renderFeed();
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

($("ns") as HTMLInputElement).addEventListener("input", (e) => {
  nsFilter = (e.target as HTMLInputElement).value.trim();
  renderTargets();
  renderFeed();
});
($("token") as HTMLInputElement).value = sessionStorage.getItem(TOKEN_KEY) ?? "";
$("save").addEventListener("click", () => {
  const token = ($("token") as HTMLInputElement).value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  watchAbort?.abort();
  refreshTargets();
});

refreshTargets();
setInterval(refreshTargets, 2000);
setInterval(renderTargets, 5000);
watchForever();
