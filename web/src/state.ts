// What the page remembers, every part bounded so that a tab left open for days stays small.
import type { BatchResult } from "./gen/batchscaler/v1/batchscaler_pb";
import { CHART_WINDOW_MS, type Sample } from "./charts";

/** Results kept for the feed. */
export const FEED_KEPT = 200;
/** Results kept per HRA for its detail view. */
export const PER_HRA_KEPT = 20;
/** HRAs whose recent results are kept. */
export const HRAS_KEPT = 1000;
/** Result ids remembered to drop replays already shown. */
export const SEEN_KEPT = 4096;

/** A set that forgets its oldest entries beyond `limit`. */
export class BoundedSet {
  private items = new Set<string>();
  constructor(private limit: number) {}
  /** Adds `id`; false if it was there already. */
  add(id: string): boolean {
    if (this.items.has(id)) return false;
    this.items.add(id);
    while (this.items.size > this.limit) this.items.delete(this.items.values().next().value!);
    return true;
  }
  get size(): number {
    return this.items.size;
  }
}

/** A map that forgets its least recently written keys beyond `limit`. */
export class BoundedMap<V> {
  private items = new Map<string, V>();
  constructor(private limit: number) {}
  get(key: string): V | undefined {
    return this.items.get(key);
  }
  set(key: string, value: V): void {
    this.items.delete(key);
    this.items.set(key, value);
    while (this.items.size > this.limit) this.items.delete(this.items.keys().next().value!);
  }
  get size(): number {
    return this.items.size;
  }
}

/** The feed (newest first) and each HRA's last results, both capped. */
export class Results {
  feed: BatchResult[] = [];
  private seen = new BoundedSet(SEEN_KEPT);
  private perHra = new BoundedMap<BatchResult[]>(HRAS_KEPT);

  /** Takes a result; false if it was already shown (a replay after a reconnect). */
  add(key: string, r: BatchResult): boolean {
    if (!this.seen.add(`${r.batchId}/${r.attempt}/${r.outcome}`)) return false;
    this.feed.unshift(r);
    if (this.feed.length > FEED_KEPT) this.feed.length = FEED_KEPT;
    const list = [r, ...(this.perHra.get(key) ?? [])].slice(0, PER_HRA_KEPT);
    this.perHra.set(key, list);
    return true;
  }
  of(key: string): BatchResult[] {
    return this.perHra.get(key) ?? [];
  }
  /** Sizes, for the page's own check that it stays bounded. */
  sizes(): { feed: number; seen: number; hras: number } {
    return { feed: this.feed.length, seen: this.seen.size, hras: this.perHra.size };
  }
}

/** Reserved replicas over the last 15 minutes, per HRA. */
export class History {
  private samples = new BoundedMap<Sample[]>(HRAS_KEPT);
  add(key: string, at: number, reserved: number): void {
    const list = (this.samples.get(key) ?? []).filter((s) => s.at >= at - CHART_WINDOW_MS);
    const last = list[list.length - 1];
    // Only changes and one sample a minute are kept: a flat line costs next to nothing.
    if (!last || last.reserved !== reserved || at - last.at >= 60_000) list.push({ at, reserved });
    this.samples.set(key, list);
  }
  of(key: string): Sample[] {
    return this.samples.get(key) ?? [];
  }
}
