// The dashboard at fleet scale, measured in headless Chromium: a service holding N HRAs hK in
// namespaces ns(K mod 50). Used by the browser test (with its bounds) and by the bench.

/**
 * Opens the dashboard of the service at `addr` holding `n` HRAs and measures: time to the
 * first rows, DOM nodes, long-task milliseconds during 10 s with 200 HRAs scaled a second
 * (`publish(addr, events)` sends them), bytes fetched during 10 s of nothing happening, and
 * DOM nodes once scrolled to the end of the list (whose last row must render).
 */
export async function measureFleet(browser, addr, n, publish, screenshot) {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  let bytes = 0;
  cdp.on("Network.dataReceived", (e) => { bytes += e.encodedDataLength || e.dataLength || 0; });
  const started = Date.now();
  await page.goto(`http://${addr}/`);
  await page.waitForSelector("#targets tr[data-hra]", { timeout: 20000 });
  const firstRowsMs = Date.now() - started;
  await page.waitForFunction((n) => document.getElementById("count").textContent.startsWith(`${n} HRAs`), n,
    { timeout: 20000 });
  const nodes = await page.evaluate(() => document.getElementsByTagName("*").length);
  await page.evaluate(() => {
    window.longTaskMs = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.longTaskMs += e.duration;
    }).observe({ type: "longtask" });
  });
  const hra = (k) => ({ namespace: `ns${k % 50}`, name: `h${k}` });
  let round = 0;
  const flowing = setInterval(() => {
    round++;
    publish(addr, Array.from({ length: 200 }, (_, i) => ({ ...hra((i * 25 + round) % n), amount: 1 })));
  }, 1000);
  await page.waitForTimeout(10000);
  clearInterval(flowing);
  const longTaskMs = Math.round(await page.evaluate(() => window.longTaskMs));
  await page.waitForTimeout(3000);
  bytes = 0;
  await page.waitForTimeout(10000);
  const idleBytes = bytes;
  await page.$eval("#targets-box", (b) => { b.scrollTop = b.scrollHeight; });
  const lastKey = Array.from({ length: n }, (_, k) => `ns${k % 50}/h${k}`).sort().pop();
  await page.waitForFunction((k) => [...document.querySelectorAll("#targets tr[data-hra]")].some((r) => r.dataset.hra === k),
    lastKey, { timeout: 5000 });
  const nodesAtEnd = await page.evaluate(() => document.getElementsByTagName("*").length);
  if (screenshot) {
    await page.$eval("#targets-box", (b) => { b.scrollTop = 0; });
    await page.waitForTimeout(300);
    await page.screenshot({ path: screenshot });
  }
  await page.close();
  return { firstRowsMs, nodes, longTaskMs, idleBytes, nodesAtEnd };
}

/** Opens the dashboard of `n` HRAs, waits for every one to count, and scrolls to the end. */
export async function loadAndScroll(browser, addr, n) {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const started = Date.now();
  await page.goto(`http://${addr}/`);
  await page.waitForSelector("#targets tr[data-hra]", { timeout: 30000 });
  const firstRowsMs = Date.now() - started;
  await page.waitForFunction((n) => document.getElementById("count").textContent.startsWith(`${n} HRAs`), n,
    { timeout: 30000 });
  const nodes = await page.evaluate(() => document.getElementsByTagName("*").length);
  await page.$eval("#targets-box", (b) => { b.scrollTop = b.scrollHeight; });
  const lastKey = Array.from({ length: n }, (_, k) => `ns${k % 50}/h${k}`).sort().pop();
  await page.waitForFunction((k) => [...document.querySelectorAll("#targets tr[data-hra]")].some((r) => r.dataset.hra === k),
    lastKey, { timeout: 5000 });
  const nodesAtEnd = await page.evaluate(() => document.getElementsByTagName("*").length);
  await page.close();
  return { firstRowsMs, nodes, nodesAtEnd };
}
