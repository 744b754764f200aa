// Drives the dashboard in headless Debian Chromium (playwright-core, no browser download):
// the HRA table, the live feed, a FAILED batch, and a screenshot for people to look at.
// Usage: node test/dashboard.mjs URL GRPCURL ADDR SCREENSHOT WINDOW_MS [AUTH_URL TOKEN]
import { chromium } from "playwright-core";
import { execFileSync, spawn } from "node:child_process";

const [url, grpcurl, addr, screenshot, windowMs, authUrl, token] = process.argv.slice(2);
const twoWindows = 2 * Number(windowMs);
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
const scale = (ns, name, amount) =>
  execFileSync(grpcurl, ["-plaintext", "-d", JSON.stringify({ namespace: ns, name, amount }), addr,
    "batchscaler.v1.BatchScaler/Scale"]);

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
const row = 'tr[data-hra="ci/linux"]';
await check("page loads and lists the HRAs", async () => {
  await page.goto(url);
  await page.waitForSelector(row, { timeout: 10000 });
  await page.waitForSelector('tr[data-hra="ml/gpu"]', { timeout: 1000 });
});
await check("says it is live", async () => {
  await page.waitForFunction(() => document.getElementById("status").textContent === "live", null, { timeout: 5000 });
});
await check("reserved replicas and the feed change within two windows", async () => {
  const before = Number(await page.textContent(`${row} td.reserved`));
  const entries = await page.locator('#feed li[data-hra="ci/linux"]').count();
  scale("ci", "linux", 2);
  await page.waitForFunction(
    ([sel, n]) => Number(document.querySelector(sel)?.textContent) === n,
    [`${row} td.reserved`, before + 2],
    { timeout: twoWindows },
  );
  await page.waitForFunction(
    ([n]) => document.querySelectorAll('#feed li[data-hra="ci/linux"]').length > n,
    [entries],
    { timeout: twoWindows },
  );
  const text = await page.textContent('#feed li[data-hra="ci/linux"]');
  if (!/APPLIED/.test(text) || !/added 2/.test(text)) throw new Error(`feed entry: ${text}`);
});
await check("an event for a missing HRA shows as FAILED", async () => {
  scale("ci", "ghost", 1);
  await page.waitForSelector('#feed li.FAILED[data-hra="ci/ghost"]', { timeout: twoWindows });
  const text = await page.textContent('#feed li.FAILED[data-hra="ci/ghost"]');
  if (!/not found/.test(text)) throw new Error(`no error text: ${text}`);
});
await check("the namespace filter hides other namespaces", async () => {
  await page.fill("#ns", "ml");
  await page.waitForFunction(() => !document.querySelector('tr[data-hra="ci/linux"]'), null, { timeout: 1000 });
  await page.waitForSelector('tr[data-hra="ml/gpu"]', { timeout: 1000 });
  await page.fill("#ns", "");
  await page.waitForSelector(row, { timeout: 1000 });
});
await check("a screenshot is written", async () => {
  for (let i = 0; i < 3; i++) scale("ci", "arm", 1);
  await page.waitForTimeout(Number(windowMs) * 2 + 500);
  await page.screenshot({ path: screenshot, fullPage: true });
});
// With DASH_PID/DASH_BIN/DASH_SEED set: the service goes away and comes back on its address.
if (process.env.DASH_PID && process.env.DASH_BIN) {
  await check("says when the stream drops and reconnects by itself", async () => {
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
