// SVG drawings: the reservations timeline of one HRA, and reserved replicas over time.
import { clock, esc, fullDate } from "./format";

/** One reservation as drawn. */
export type Bar = { name: string; start: Date; end: Date; replicas: number };
/** One sample of reserved replicas. */
export type Sample = { at: number; reserved: number };

/** Length of the reserved-over-time window. */
export const CHART_WINDOW_MS = 15 * 60 * 1000;

/**
 * One bar per reservation from effective to expiration time, labelled by job id, with a "now"
 * line; bars at index maxReplicas and beyond (the backlog) are drawn differently.
 */
export function timeline(bars: Bar[], maxReplicas: number | undefined, now: Date): string {
  if (bars.length === 0) return `<p class="meta">No reservations.</p>`;
  const w = 800, row = 18, top = 22, left = 8, right = 8;
  const h = top + bars.length * row + 20;
  const t0 = Math.min(now.getTime() - 60_000, ...bars.map((b) => b.start.getTime()));
  const t1 = Math.max(now.getTime() + 60_000, ...bars.map((b) => b.end.getTime()));
  const x = (t: number) => left + ((t - t0) / (t1 - t0)) * (w - left - right);
  const rects = bars.map((b, i) => {
    const backlog = maxReplicas !== undefined && i >= maxReplicas;
    const x0 = x(b.start.getTime()), x1 = Math.max(x0 + 2, x(b.end.getTime()));
    const y = top + i * row;
    const label = b.name || "(unnamed)";
    const title = `${label}: ${fullDate(b.start)} → ${fullDate(b.end)}${backlog ? " (backlog, beyond maxReplicas)" : ""}`;
    return `<g class="bar${backlog ? " backlog" : ""}" data-job="${esc(b.name)}">` +
      `<title>${esc(title)}</title>` +
      `<rect x="${x0.toFixed(1)}" y="${y}" width="${(x1 - x0).toFixed(1)}" height="${row - 4}" rx="2"/>` +
      `<text x="${(x0 + 4).toFixed(1)}" y="${y + row - 8}">${esc(label)}</text></g>`;
  });
  const nx = x(now.getTime()).toFixed(1);
  return `<svg class="timeline" viewBox="0 0 ${w} ${h}" role="img" aria-label="${bars.length} reservations from effective to expiration time">` +
    `<text class="axis" x="${left}" y="12">${clock(new Date(t0))}</text>` +
    `<text class="axis" x="${w - right}" y="12" text-anchor="end">${clock(new Date(t1))}</text>` +
    rects.join("") +
    `<line class="now" x1="${nx}" x2="${nx}" y1="${top - 6}" y2="${h - 14}"/>` +
    `<text class="axis now-label" x="${nx}" y="${h - 2}" text-anchor="${Number(nx) < 40 ? "start" : "middle"}">now</text></svg>`;
}

/** Reserved replicas over the last 15 minutes as a step line, with its time axis and scale. */
export function reservedChart(samples: Sample[], now: number, compact = false): string {
  const w = compact ? 140 : 800, h = compact ? 28 : 160;
  const left = compact ? 1 : 34, bottom = compact ? 1 : 18, top = compact ? 2 : 8, right = compact ? 1 : 8;
  const t0 = now - CHART_WINDOW_MS;
  const shown = samples.filter((s) => s.at >= t0);
  const max = Math.max(1, ...shown.map((s) => s.reserved));
  const x = (t: number) => left + ((t - t0) / CHART_WINDOW_MS) * (w - left - right);
  const y = (v: number) => top + (1 - v / max) * (h - top - bottom);
  let path = "";
  shown.forEach((s, i) => {
    const px = x(s.at).toFixed(1), py = y(s.reserved).toFixed(1);
    path += i === 0 ? `M${px},${py}` : `H${px}V${py}`;
  });
  if (shown.length) path += `H${x(now).toFixed(1)}`;
  const label = `reserved replicas over the last 15 minutes, scale 0 to ${max}`;
  if (compact) {
    return `<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${label}">` +
      `<title>${label}</title><path d="${path}"/></svg><span class="meta scale">max ${max}</span>`;
  }
  const ticks = [15, 10, 5, 0].map((m) => {
    const tx = x(now - m * 60_000).toFixed(1);
    return `<line class="grid" x1="${tx}" x2="${tx}" y1="${top}" y2="${h - bottom}"/>` +
      `<text class="axis" x="${tx}" y="${h - 4}" text-anchor="${m ? (m === 15 ? "start" : "middle") : "end"}">${m ? `−${m} min` : "now"}</text>`;
  });
  return `<svg class="chart" viewBox="0 0 ${w} ${h}" role="img" aria-label="${label}">` + ticks.join("") +
    `<text class="axis" x="${left - 4}" y="${y(max) + 4}" text-anchor="end">${max}</text>` +
    `<text class="axis" x="${left - 4}" y="${y(0)}" text-anchor="end">0</text>` +
    `<line class="grid" x1="${left}" x2="${w - right}" y1="${y(0)}" y2="${y(0)}"/>` +
    `<path d="${path}"/></svg>`;
}
