// Drives the dashboard in headless Debian Chromium (playwright-core, no browser download):
// overview, health strip, live feed, one HRA's timeline (by click and by URL), the routing
// form, ticking ages and plurals, keyboard use, contrast, a narrow screen, bounded memory
// under thousands of results, and screenshots for the README.
// Usage: node test/dashboard.mjs URL GRPCURL ADDR SCREENSHOT_DIR WINDOW_MS [AUTH_URL TOKEN]
// Env: DASH_FLOOD_ADDR (a service with 100 HRAs flood/h0..h99 and a short window),
//      DASH_FLEET_ADDR (a service with 5,000 HRAs hK in namespaces ns(K mod 50)),
//      DASH_PID/DASH_BIN/DASH_SEED (stop the service and start it again).
import { chromium } from "playwright-core";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { loadAndScroll, measureFleet } from "./fleet-measure.mjs";

const [url, grpcurl, addr, shots, windowMs, authUrl, token] = process.argv.slice(2);
const twoWindows = 2 * Number(windowMs) + 2000;
mkdirSync(shots, { recursive: true });
let failed = 0;
const check = async (name, fn) => {
  try {
    await fn();
    console.log(`PASS dashboard: ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL dashboard: ${name}: ${String(e.message).split("\n")[0]}`);
  }
};
const rpc = (target, method, body) =>
  execFileSync(grpcurl, ["-plaintext", "-d", JSON.stringify(body), target, `batchscaler.v1.BatchScaler/${method}`]).toString();
const scale = (ns, name, amount, extra = {}) => rpc(addr, "Scale", { namespace: ns, name, amount, ...extra });
const publish = (target, events) =>
  execFileSync(grpcurl, ["-plaintext", "-d", "@", target, "batchscaler.v1.BatchScaler/Publish"],
    { input: events.map((e) => JSON.stringify(e)).join("\n") });
const reservations = (ns, name) =>
  (JSON.parse(rpc(addr, "GetTarget", { namespace: ns, name })).capacityReservations ?? []).length;
const assert = (ok, what) => { if (!ok) throw new Error(what); };

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-precise-memory-info", "--js-flags=--expose-gc"],
});
const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
const row = 'tr[data-hra="ci/linux"]';
const feedOf = (k) => `#feed li[data-hra="${k}"]`;

await check("page loads and lists the HRAs", async () => {
  await page.goto(url);
  await page.waitForSelector(row, { timeout: 10000 });
  await page.waitForSelector('tr[data-hra="ml/gpu"]', { timeout: 1000 });
});
await check("nothing needs attention at first, and it says so in one line", async () => {
  await page.waitForFunction(() => document.getElementById("attention").textContent === "Nothing needs attention.",
    null, { timeout: 5000 });
});
await check("says it is live, and in which zone times are", async () => {
  await page.waitForFunction(() => document.getElementById("status").textContent === "live", null, { timeout: 5000 });
  const zone = await page.textContent("#zone");
  assert(/times in UTC/.test(zone), `zone: ${zone}`);
});
await check("the health strip shows rates, pending work and apply latency", async () => {
  await page.waitForFunction(() => document.querySelectorAll("#health .tile").length >= 8, null, { timeout: 5000 });
  const text = await page.textContent("#health");
  for (const label of ["events in /s", "applied /s", "failed /s", "conflicts /s", "pending HRAs", "apply latency", "replicas · owned HRAs"]) {
    assert(text.includes(label), `no "${label}" in ${text}`);
  }
});
await check("reserved replicas and the feed change within two windows; 1 event, not 1 events", async () => {
  const before = Number(await page.textContent(`${row} td.reserved`));
  const entries = await page.locator(feedOf("ci/linux")).count();
  scale("ci", "linux", 2);
  await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel)?.textContent) === n,
    [`${row} td.reserved`, before + 2], { timeout: twoWindows });
  await page.waitForFunction(([sel, n]) => document.querySelectorAll(sel).length > n,
    [feedOf("ci/linux"), entries], { timeout: twoWindows });
  const text = await page.textContent(feedOf("ci/linux"));
  assert(/APPLIED/.test(text) && /added 2/.test(text), `feed entry: ${text}`);
  assert(/\b1 event\b/.test(text) && !/1 events/.test(text), `plural: ${text}`);
});
await check("three events in one batch read 3 events", async () => {
  publish(addr, [1, 1, 1].map((amount) => ({ namespace: "ci", name: "arm", amount })));
  await page.waitForSelector(feedOf("ci/arm"), { timeout: twoWindows });
  const text = await page.textContent(feedOf("ci/arm"));
  assert(/\b3 events\b/.test(text), `plural: ${text}`);
});
await check("an event for a missing HRA shows as FAILED with its error", async () => {
  scale("ci", "ghost", 1);
  await page.waitForSelector('#feed li.FAILED[data-hra="ci/ghost"]', { timeout: twoWindows });
  const text = await page.textContent('#feed li.FAILED[data-hra="ci/ghost"]');
  assert(/not found/.test(text), `no error text: ${text}`);
});
await check("feed cards line up whatever their outcome", async () => {
  const lefts = await page.$$eval("#feed li .body", (els) => els.map((e) => Math.round(e.getBoundingClientRect().left)));
  assert(lefts.length >= 3 && new Set(lefts).size === 1, `body columns at ${lefts}`);
});
await check("ages tick every second and times carry the date on hover", async () => {
  const first = await page.textContent("#feed time.age");
  await page.waitForFunction((t) => document.querySelector("#feed time.age").textContent !== t, first, { timeout: 3000 });
  const title = await page.getAttribute("#feed .clock", "title");
  assert(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/.test(title), `hover: ${title}`);
});
await check("the namespace filter hides other namespaces", async () => {
  await page.fill("#ns", "ml");
  await page.waitForFunction(() => !document.querySelector('tr[data-hra="ci/linux"]'), null, { timeout: 1000 });
  await page.waitForSelector('tr[data-hra="ml/gpu"]', { timeout: 1000 });
  await page.fill("#ns", "");
  await page.waitForSelector(row, { timeout: 1000 });
});

await check("the name filter narrows as you type, and says how many of all match", async () => {
  await page.fill("#q", "GP");
  await page.waitForFunction(() => document.querySelectorAll("#targets tr[data-hra]").length === 1, null, { timeout: 1000 });
  assert(await page.$('tr[data-hra="ml/gpu"]'), "ml/gpu is the one left");
  const count = await page.textContent("#count");
  assert(/^1 HRA of 4$/.test(count), `count: ${count}`);
  const query = await page.evaluate(() => location.search);
  assert(new URLSearchParams(query).get("q") === "GP", `query: ${query}`);
  await page.fill("#q", "");
  await page.waitForFunction(() => document.querySelectorAll("#targets tr[data-hra]").length === 4, null, { timeout: 1000 });
});
await check("a header sorts by its column, again the other way, and a link restores filter and order", async () => {
  const order = (p) => p.$$eval("#targets tr[data-hra]", (rows) => rows.map((r) => r.getAttribute("data-hra")).join());
  assert(await order(page) === "ci/arm,ci/linux,ci/small,ml/gpu", `by name: ${await order(page)}`);
  await page.click('th[data-sort="reserved"] button');
  const most = await order(page);
  assert(most.startsWith("ci/arm,ci/linux,"), `most reserved first (3, 2): ${most}`);
  assert(await page.getAttribute('th[data-sort="reserved"]', "aria-sort") === "descending", "aria-sort descending");
  await page.click('th[data-sort="reserved"] button');
  const fewest = await order(page);
  assert(fewest.endsWith(",ci/linux,ci/arm"), `fewest first: ${fewest}`);
  await page.click('th[data-sort="reserved"] button');
  await page.fill("#q", "ci/");
  await page.waitForFunction(() => new URLSearchParams(location.search).get("q") === "ci/", null, { timeout: 1000 });
  const link = await page.evaluate(() => location.href);
  assert(/[?&]sort=reserved/.test(link) && /[?&]dir=desc/.test(link) && /[?&]q=ci%2F/.test(link), `link: ${link}`);
  const other = await browser.newPage();
  try {
    await other.goto(link);
    await other.waitForSelector('tr[data-hra="ci/linux"]', { timeout: 10000 });
    assert(await order(other) === "ci/arm,ci/linux,ci/small", `restored: ${await order(other)}`);
    assert(await other.inputValue("#q") === "ci/", "the filter box is restored");
  } finally {
    await other.close();
  }
  await page.fill("#q", "");
  await page.click('th[data-sort="name"] button');
  assert(await order(page) === "ci/arm,ci/linux,ci/small,ml/gpu", `back to names: ${await order(page)}`);
});

// One HRA: three job-named reservations on an HRA with maxReplicas 2, so one is backlog.
for (const job of ["job-101", "job-102", "job-103"]) scale("ci", "small", 1, { job_id: job });
await check("a click on a row opens the HRA at #/ci/small", async () => {
  await page.waitForFunction(() => Number(document.querySelector('tr[data-hra="ci/small"] td.reserved')?.textContent) >= 2,
    null, { timeout: twoWindows });
  await page.click('tr[data-hra="ci/small"] td.reserved');
  await page.waitForFunction(() => location.hash === "#/ci/small", null, { timeout: 2000 });
  await page.waitForSelector("#detail:not([hidden]) svg.timeline", { timeout: 5000 });
  assert((await page.textContent("#detail-title")) === "ci/small", "title");
});
await check("the timeline has one bar per reservation, named by job id, with a now line", async () => {
  const want = reservations("ci", "small");
  assert(want === 3, `GetTarget has ${want} reservations`);
  await page.waitForFunction((n) => document.querySelectorAll("svg.timeline g.bar").length === n, want, { timeout: 5000 });
  const text = await page.textContent('svg.timeline g.bar[data-job="job-101"]');
  assert(text.includes("job-101"), `bar text: ${text}`);
  assert(await page.locator("svg.timeline line.now").count() === 1, "no now line");
});
await check("bars beyond maxReplicas are drawn as backlog", async () => {
  const backlog = await page.locator("svg.timeline g.bar.backlog").count();
  assert(backlog === 1, `${backlog} backlog bars, want 1 (3 reservations, maxReplicas 2)`);
  const dash = await page.$eval("svg.timeline g.bar.backlog rect", (r) => getComputedStyle(r).strokeDasharray);
  assert(dash && dash !== "none", `backlog stroke: ${dash}`);
  const facts = await page.textContent("#detail-facts");
  assert(/trigger duration\s*15m/.test(facts), `facts: ${facts}`);
});
await check("the HRA's jobs: wait and run percentiles, completed count and the advice", async () => {
  // A job GitHub reports waited 20 s and ran 100 s (never seen queued: it still counts).
  const ago = (s) => new Date(Date.now() - s * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  scale("ci", "small", -1, {
    job_id: "job-90",
    job_times: { created_at: ago(200), started_at: ago(180), completed_at: ago(80), ran: true },
  });
  await page.waitForFunction(() => /^20s \/ 20s \/ 20s$/.test(document.querySelector("#detail-jobs dd.wait")?.textContent ?? ""),
    null, { timeout: 5000 });
  const jobs = await page.textContent("#detail-jobs");
  assert(/completed\s*1\b/.test(jobs), `jobs: ${jobs}`);
  assert(/1m40s \/ 1m40s \/ 1m40s/.test(jobs), `run: ${jobs}`);
  assert(/1 of 20 jobs completed so far/.test(jobs), `advice: ${jobs}`);
  // The overview's row has the same wait p90.
  await page.waitForFunction(() => document.querySelector('tr[data-hra="ci/small"] td.wait')?.textContent === "20s",
    null, { timeout: 5000 });
});
await check("the HRA's last batches and its reserved-over-time chart with a scale", async () => {
  await page.waitForSelector('#detail-feed li[data-hra="ci/small"]', { timeout: 5000 });
  const chart = await page.textContent("#chart");
  assert(/−15 min/.test(chart) && /now/.test(chart), `axis: ${chart}`);
});
await page.screenshot({ path: `${shots}/dashboard-hra.png` });
await check("the HRA view is reached by URL too", async () => {
  await page.goto(`${url}#/ci/linux`);
  await page.waitForSelector("#detail:not([hidden])", { timeout: 5000 });
  await page.waitForFunction(() => document.getElementById("detail-title").textContent === "ci/linux", null, { timeout: 2000 });
  await page.waitForSelector("svg.timeline g.bar", { timeout: 5000 });
});
await check("sorted by waiting jobs, wait p90 or utilization, the HRA with job figures comes first, the others after", async () => {
  await page.goto(`${url}#/`);
  const rows = () => page.$$eval("#targets tr[data-hra]", (r) => r.map((x) => x.getAttribute("data-hra")));
  await page.waitForFunction(() => document.querySelector('tr[data-hra="ci/small"] td.wait')?.textContent === "20s",
    null, { timeout: 5000 });
  for (const key of ["waiting", "wait", "utilization"]) {
    await page.click(`th[data-sort="${key}"] button`);
    await page.waitForFunction((k) => new URLSearchParams(location.search).get("sort") === k, key, { timeout: 2000 });
    const order = await rows();
    assert(order[0] === "ci/small" && order.length === 4, `${key}: ${order}`);
    assert(new URLSearchParams(new URL(page.url()).search).get("dir") === "desc", `${key}: largest first`);
  }
  await page.click('th[data-sort="name"] button');
  await page.waitForFunction(() => !new URLSearchParams(location.search).get("sort"), null, { timeout: 2000 });
});
await check("an HRA with more jobs reserved than maxReplicas needs attention, with why and a link", async () => {
  await page.goto(`${url}#/`);
  await page.waitForSelector('#attention li[data-hra="ci/small"]', { timeout: twoWindows });
  const text = await page.textContent('#attention li[data-hra="ci/small"]');
  assert(/3 jobs reserved, more than maxReplicas 2: 1 wait for a runner/.test(text), `reason: ${text}`);
  assert(await page.$('#attention a[href="#/ci/small"]'), "it links to the HRA's timeline");
});
await check("keyboard: Tab reaches an HRA link and Enter opens it", async () => {
  await page.goto(`${url}#/`);
  await page.waitForSelector(row, { timeout: 5000 });
  let focused = "";
  for (let i = 0; i < 40 && !focused.includes("#/ci/"); i++) {
    await page.keyboard.press("Tab");
    focused = await page.evaluate(() => document.activeElement?.getAttribute("href") ?? "");
  }
  assert(focused.includes("#/ci/"), "no HRA link reached by Tab");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#detail:not([hidden])", { timeout: 2000 });
});

await check("routing form: a matched job shows target, amount, duration and reason", async () => {
  await page.goto(`${url}#/route`);
  await page.fill('input[name="repository"]', "my-org/my-repo");
  await page.fill('input[name="labels"]', "self-hosted,linux,x64");
  await page.click('#route-form button[type="submit"]');
  await page.waitForSelector("#route-answer dl.matched", { timeout: 5000 });
  const text = await page.textContent("#route-answer");
  assert(text.includes("ci/linux") && text.includes("+1") && text.includes("30m"), `answer: ${text}`);
  assert((await page.textContent("#route-answer .reason")).length > 10, "no reason");
});
await page.screenshot({ path: `${shots}/dashboard-route.png` });
await check("routing form: an unmatched job says no HRA, and why", async () => {
  const before = reservations("ci", "linux");
  await page.fill('input[name="repository"]', "someone/else");
  await page.fill('input[name="labels"]', "self-hosted,huge");
  await page.click('#route-form button[type="submit"]');
  await page.waitForSelector("#route-answer dl.unmatched", { timeout: 5000 });
  const text = await page.textContent("#route-answer");
  assert(/no HRA/.test(text), `answer: ${text}`);
  assert(reservations("ci", "linux") === before, "routing queued something");
});
await check("text contrast is at least 4.5:1 (WCAG AA)", async () => {
  const worst = await page.evaluate(() => {
    const rgba = (c) => { const v = c.match(/[\d.]+/g).map(Number); return [v[0], v[1], v[2], v[3] ?? 1]; };
    const lum = ([r, g, b]) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    // The background actually seen: translucent layers composited over their parents.
    const bg = (el) => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const c = rgba(getComputedStyle(e).backgroundColor);
        if (c[3] > 0) layers.push(c);
        if (c[3] === 1) break;
      }
      let out = [0, 0, 0];
      for (const [r, g, b, a] of layers.reverse()) out = [r * a + out[0] * (1 - a), g * a + out[1] * (1 - a), b * a + out[2] * (1 - a)];
      return out;
    };
    let min = 99, what = "";
    for (const el of document.querySelectorAll("#route p, #route label, #route button, #route .reason, #route dt, header a, header label, #status, #zone")) {
      const [a, b] = [lum(rgba(getComputedStyle(el).color)), lum(bg(el))];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      if (ratio < min) { min = ratio; what = el.outerHTML.slice(0, 60); }
    }
    return [min, what];
  });
  assert(worst[0] >= 4.5, `contrast ${worst[0].toFixed(2)} for ${worst[1]}`);
});

await check("a wide screen uses the width; a narrow one stacks the sections", async () => {
  await page.goto(`${url}#/`);
  await page.waitForSelector(row, { timeout: 5000 });
  const wide = await page.$$eval("#overview > section", (s) => s.map((e) => e.getBoundingClientRect().toJSON()));
  assert(wide[1].left > wide[0].right - 1, "side by side on 1600 px");
  await page.screenshot({ path: `${shots}/dashboard-overview.png` });
  const narrow = await browser.newPage({ viewport: { width: 420, height: 900 } });
  await narrow.goto(url);
  await narrow.waitForSelector(row, { timeout: 5000 });
  const boxes = await narrow.$$eval("#overview > section", (s) => s.map((e) => e.getBoundingClientRect().toJSON()));
  assert(boxes[1].top >= boxes[0].bottom - 1, "stacked on 420 px");
  const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 1, `page is ${overflow}px wider than the screen`);
  await narrow.close();
});

if (process.env.DASH_FLEET_ADDR) {
  await check("5,000 HRAs: first rows soon, a windowed DOM, short tasks with batches flowing, few idle bytes", async () => {
    const fleet = process.env.DASH_FLEET_ADDR;
    // ns0/h0 is already over --max-hra-bytes: its batch FAILS. Thousands of healthy batches
    // follow while the page is measured; ns0/h0 must still be first to need attention.
    publish(fleet, [{ namespace: "ns0", name: "h0", amount: 1, job_id: "j1" }]);
    const m = await measureFleet(browser, fleet, 5000, publish, `${shots}/dashboard-fleet.png`);
    console.log(`fleet: 5000 HRAs; first rows ${m.firstRowsMs} ms; DOM ${m.nodes} nodes (${m.nodesAtEnd} at the end); ` +
      `long tasks ${m.longTaskMs} ms in 10 s with batches flowing; idle ${m.idleBytes} bytes in 10 s`);
    assert(m.nodes <= 6000 && m.nodesAtEnd <= 6000, `DOM ${m.nodes} / ${m.nodesAtEnd} nodes`);
    assert(m.longTaskMs < 200, `long tasks ${m.longTaskMs} ms`);
    assert(m.idleBytes <= 100000, `idle ${m.idleBytes} bytes in 10 s`);
    assert(m.firstRowsMs <= 3000, `first rows after ${m.firstRowsMs} ms`);
    const fp = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await fp.goto(`http://${fleet}/`);
    await fp.waitForSelector("#attention li[data-hra]", { timeout: 10000 });
    const first = await fp.$eval("#attention li[data-hra]", (li) => [li.dataset.hra, li.textContent]);
    assert(first[0] === "ns0/h0" && /last batch failed: .*max-hra-bytes/.test(first[1]), `first: ${first}`);
    await fp.close();
  });
}
if (process.env.DASH_FLEET20K_ADDR) {
  await check("20,000 HRAs still load and scroll, the DOM still windowed", async () => {
    const m = await loadAndScroll(browser, process.env.DASH_FLEET20K_ADDR, 20000);
    console.log(`fleet: 20000 HRAs; first rows ${m.firstRowsMs} ms; DOM ${m.nodes} nodes (${m.nodesAtEnd} at the end)`);
    assert(m.nodes <= 6000 && m.nodesAtEnd <= 6000, `DOM ${m.nodes} / ${m.nodesAtEnd} nodes`);
  });
}
if (process.env.DASH_FLOOD_ADDR) {
  await check("thousands of results keep the DOM and memory bounded", async () => {
    const flood = process.env.DASH_FLOOD_ADDR;
    const fp = await browser.newPage({ viewport: { width: 1400, height: 800 } });
    await fp.goto(`http://${flood}/`);
    await fp.waitForSelector('tr[data-hra="flood/h0"]', { timeout: 10000 });
    const round = () => publish(flood, Array.from({ length: 100 }, (_, i) => ({ namespace: "flood", name: `h${i}`, amount: 1 })));
    const measure = async () => {
      await fp.evaluate(() => window.gc?.());
      return fp.evaluate(() => ({
        nodes: document.getElementsByTagName("*").length,
        heap: performance.memory?.usedJSHeapSize ?? 0,
        sizes: window.dashboardSizes(),
        feed: document.querySelectorAll("#feed li").length,
      }));
    };
    for (let i = 0; i < 10; i++) round();
    await fp.waitForTimeout(1500);
    const early = await measure();
    for (let i = 0; i < 40; i++) round();
    await fp.waitForFunction(() => window.dashboardSizes().seen >= 4000, null, { timeout: 30000 });
    await fp.waitForTimeout(2500);
    const late = await measure();
    console.log(`flood: ${late.sizes.seen}+ results; DOM ${early.nodes} -> ${late.nodes} nodes; ` +
      `heap ${(early.heap / 1e6).toFixed(1)} -> ${(late.heap / 1e6).toFixed(1)} MB; feed ${late.feed}`);
    assert(late.feed <= 200 && late.sizes.feed <= 200, `feed holds ${late.feed}`);
    assert(late.sizes.seen <= 4096 && late.sizes.hras <= 1000, JSON.stringify(late.sizes));
    assert(late.nodes < early.nodes * 1.5 + 500, `DOM grew ${early.nodes} -> ${late.nodes}`);
    assert(late.heap < early.heap + 8e6, `heap grew ${(early.heap / 1e6).toFixed(1)} -> ${(late.heap / 1e6).toFixed(1)} MB`);
    await fp.close();
  });
}
// With DASH_DRIFT_ADDR set: a service that recovered a failed delivery for ci/small and then
// verified that job completed on GitHub.
if (process.env.DASH_DRIFT_ADDR) {
  await check("batches caused by GitHub are marked in the feed, on the HRA's page and in the health strip", async () => {
    const dp = await browser.newPage({ viewport: { width: 1400, height: 800 } });
    await dp.goto(`http://${process.env.DASH_DRIFT_ADDR}/`);
    await dp.waitForSelector("#feed .cause.recovered", { timeout: 10000 });
    await dp.waitForSelector("#feed .cause.verified", { timeout: 10000 });
    const recovered = await dp.textContent("#feed .cause.recovered");
    assert(recovered.trim() === "recovered 1", `feed says ${recovered}`);
    await dp.goto(`http://${process.env.DASH_DRIFT_ADDR}/#/ci/small`);
    await dp.waitForSelector("#detail-feed .cause.verified", { timeout: 10000 });
    await dp.waitForFunction(() => /recovered · verified/.test(document.getElementById("health").textContent), null,
      { timeout: 10000 });
    const tile = await dp.evaluate(() => [...document.querySelectorAll("#health .tile")]
      .map((t) => t.textContent).find((t) => t.includes("from GitHub")));
    assert(/1 · 1 \(1\)/.test(tile), `health strip says ${tile}`);
    await dp.close();
  });
}
// With DASH_PID/DASH_BIN/DASH_SEED set: the service goes away and comes back on its address.
if (process.env.DASH_PID && process.env.DASH_BIN) {
  await check("says when the stream drops and reconnects by itself", async () => {
    await page.goto(`${url}#/`);
    await page.waitForSelector(row, { timeout: 5000 });
    process.kill(Number(process.env.DASH_PID), "SIGTERM");
    await page.waitForFunction(() => /reconnect/.test(document.getElementById("status").textContent), null,
      { timeout: 10000 });
    const again = spawn(process.env.DASH_BIN, ["--listen", addr, "--metrics-listen", "127.0.0.1:0",
      "--seed", process.env.DASH_SEED, "--window", `${windowMs}ms`], { stdio: "ignore" });
    try {
      await page.waitForFunction(() => document.getElementById("status").textContent === "live", null,
        { timeout: 20000 });
      await page.waitForSelector(row, { timeout: 5000 });
    } finally {
      again.kill("SIGTERM");
    }
  });
}
if (authUrl) {
  await check("with tokens on, it says so, then works once a token is given", async () => {
    const guarded = await browser.newPage();
    await guarded.goto(authUrl);
    await guarded.waitForFunction(() => /UNAUTHENTICATED|unauthenticated|bearer|authorization/i.test(
      document.getElementById("status").textContent), null, { timeout: 10000 });
    await guarded.fill("#token", token);
    await guarded.click("#save");
    await guarded.waitForSelector(row, { timeout: 10000 });
    await guarded.waitForFunction(() => document.getElementById("status").textContent === "live", null, { timeout: 10000 });
    const stored = await guarded.evaluate(() => sessionStorage.getItem("batch-scaler-token"));
    if (stored !== token) throw new Error(`session storage holds ${stored}`);
  });
}
await browser.close();
process.exit(failed ? 1 : 0);
