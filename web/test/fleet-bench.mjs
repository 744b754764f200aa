// Bench (not a test): the dashboard's figures at one fleet size, on one line.
// Usage: node test/fleet-bench.mjs GRPCURL ADDR N (a service holding N HRAs hK in ns(K mod 50))
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { measureFleet } from "./fleet-measure.mjs";

const [grpcurl, addr, n] = process.argv.slice(2);
const publish = (target, events) =>
  execFileSync(grpcurl, ["-plaintext", "-d", "@", target, "batchscaler.v1.BatchScaler/Publish"],
    { input: events.map((e) => JSON.stringify(e)).join("\n") });
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
});
const m = await measureFleet(browser, addr, Number(n), publish);
console.log(`dashboard_bench hras=${n} first_rows_ms=${m.firstRowsMs} dom_nodes=${m.nodes} ` +
  `dom_nodes_at_end=${m.nodesAtEnd} long_task_ms_in_10s_with_batches=${m.longTaskMs} idle_bytes_per_10s=${m.idleBytes}`);
await browser.close();
