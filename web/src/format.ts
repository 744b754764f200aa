// Text for people: counts with their noun, relative ages, dates with their zone, durations.

/** "1 event", "3 events". */
export function plural(n: number | bigint, noun: string): string {
  return `${n} ${noun}${Number(n) === 1 ? "" : "s"}`;
}

/** Relative age: "now", "12s ago", "4m ago", "2h ago", "3d ago" (future times: "in 5m"). */
export function ago(d: Date, now = Date.now()): string {
  const s = Math.round((now - d.getTime()) / 1000);
  const abs = Math.abs(s);
  const text = abs < 1 ? "now"
    : abs < 60 ? `${abs}s`
    : abs < 3600 ? `${Math.floor(abs / 60)}m`
    : abs < 86400 ? `${Math.floor(abs / 3600)}h`
    : `${Math.floor(abs / 86400)}d`;
  if (text === "now") return text;
  return s >= 0 ? `${text} ago` : `in ${text}`;
}

/** The browser's zone as "UTC+01:00" (or "UTC"). */
export function zoneName(d = new Date()): string {
  const m = -d.getTimezoneOffset();
  if (m === 0) return "UTC";
  const sign = m > 0 ? "+" : "-";
  const hh = String(Math.floor(Math.abs(m) / 60)).padStart(2, "0");
  const mm = String(Math.abs(m) % 60).padStart(2, "0");
  return `UTC${sign}${hh}:${mm}`;
}

/** Full local date and time with the zone, for hovers. */
export function fullDate(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zoneName(d)}`;
}

/** Local time of day, "14:03:07". */
export function clock(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A `<time>` whose text is a relative age, kept ticking by `tickAges`. */
export function ageTag(d: Date): string {
  return `<time class="age" datetime="${d.toISOString()}" title="${fullDate(d)}">${ago(d)}</time>`;
}

/** Re-renders every relative age on the page (called once a second). */
export function tickAges(root: ParentNode = document): void {
  const now = Date.now();
  root.querySelectorAll<HTMLTimeElement>("time.age").forEach((t) => {
    const text = ago(new Date(t.dateTime), now);
    if (t.textContent !== text) t.textContent = text;
  });
}

/** Seconds as "45s", "30m", "1h30m", "2.5s" (sub-second precision under 10 s). */
export function seconds(s: number): string {
  if (s < 10) return `${Number(s.toFixed(s < 1 ? 3 : 2))}s`;
  if (s < 60) return `${Math.round(s)}s`;
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = Math.round(s % 60);
  return `${h ? `${h}h` : ""}${m ? `${m}m` : ""}${r ? `${r}s` : ""}` || "0s";
}

/** A rate per second, compact: "0", "0.5", "12", "3.4k". */
export function rate(perSecond: number): string {
  if (perSecond >= 1000) return `${(perSecond / 1000).toFixed(1)}k`;
  if (perSecond >= 10 || perSecond === 0) return String(Math.round(perSecond));
  return perSecond.toFixed(1);
}

/** HTML-escapes text. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}
