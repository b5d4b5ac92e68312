// Drives Debian's chromium (headless, through playwright-core) against a real agent
// running the demo, and prints one JSON report of what it saw on stdout. The pytest
// side (test_status_page.py) starts this script and asserts on the report.
//
// Usage: node status_page.js WSPROBE_BIN CONFIG_FILE [SCREENSHOT_DIR]
"use strict";

const { spawn } = require("child_process");
const path = require("path");
const { chromium } = require("playwright-core");

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// Without the background-networking flags chromium calls outside hosts at start.
const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--no-first-run",
];
const DEADLINE_MS = 60000;

function startAgent(bin, config) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, ["run", "--demo", "-c", config], {
      cwd: path.dirname(config), stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    const timer = setTimeout(() => reject(new Error("agent did not start:\n" + log)), 20000);
    proc.stderr.on("data", (chunk) => {
      log += chunk.toString();
      const m = log.match(/listening on (https?:\/\/[^\s]+?:\d+)/);
      if (m) { clearTimeout(timer); resolve({ proc, url: m[1], log: () => log }); }
    });
    proc.on("exit", (code) => reject(new Error(`agent exited ${code}:\n${log}`)));
  });
}

async function until(fn, what) {
  const end = Date.now() + DEADLINE_MS;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function main() {
  const [bin, config, shots] = process.argv.slice(2);
  const agent = await startAgent(bin, config);
  const base = agent.url;
  const report = { base, requests: [], consoleErrors: [] };
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const watch = (page) => {
      page.on("request", (req) => report.requests.push(req.url()));
      page.on("console", (msg) => { if (msg.type() === "error") report.consoleErrors.push(msg.text()); });
      page.on("pageerror", (err) => report.consoleErrors.push(String(err)));
    };
    const light = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: "light" });
    const page = await light.newPage();
    watch(page);
    const api = async () => (await (await page.request.get(base + "/api/v1/checks?history=0")).json()).checks;
    // Every demo check has run, and the flaky one has failed at least once.
    await until(async () => {
      const checks = await api();
      return checks.every((c) => c.last_result) && checks.some((c) => c.name === "demo-flaky" && (c.counts.failure || 0) > 0);
    }, "every demo check to run and demo-flaky to fail");
    // Page states against the API's, read around the page load (retried if a run lands between).
    report.states = await until(async () => {
      const before = await Promise.all((await api()).map(async (c) =>
        [c.name, (await (await page.request.get(`${base}/api/v1/checks/${c.name}`)).json()).status]));
      await page.goto(base + "/");
      const shown = await page.$$eval(".check", (els) => els.map((e) => [e.querySelector(".name").textContent, e.getAttribute("data-state")]));
      const expected = Object.fromEntries(before);
      const same = shown.length === before.length && shown.every(([n, s]) => expected[n] === s);
      return same ? { shown, expected } : null;
    }, "page states equal to the API's");
    report.flakyReason = await until(async () => {
      await page.goto(base + "/?q=demo-flaky");
      return page.$eval(".check", (e) => { const r = e.querySelector(".reason"); return r && r.textContent; }).catch(() => null);
    }, "a failure reason on demo-flaky");
    report.firstTab = await (async () => { await page.keyboard.press("Tab"); return page.evaluate(() => document.activeElement.textContent); })();
    report.refreshed = await (async () => {
      await page.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
      await page.waitForSelector("body[data-refreshed]", { timeout: 10000 });
      return page.$$eval("#live .check", (els) => els.length);
    })();
    report.lightBackground = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    // The check page's chart gets points once the rollups are written (every 10 s).
    report.chartPoints = await until(async () => {
      await page.goto(base + "/checks/demo-echo");
      const n = await page.$eval("svg.chart", (e) => Number(e.getAttribute("data-points")));
      const bars = await page.$$eval("svg.chart rect", (els) => els.length);
      return n > 0 && bars > 0 ? { points: n, bars } : null;
    }, "points on the demo-echo chart");
    if (shots) {
      await page.screenshot({ path: path.join(shots, "status-check.png"), fullPage: true });
      await page.goto(base + "/");
      await page.screenshot({ path: path.join(shots, "status-overview.png"), fullPage: true });
    }

    report.sections = {};
    for (const name of ["demo-feed-watch", "demo-chat-relay"]) {
      await page.goto(`${base}/checks/${name}`);
      report.sections[name] = await page.$$eval("h2", (els) => els.map((e) => e.textContent));
    }

    const dark = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: "dark" });
    const dpage = await dark.newPage();
    watch(dpage);
    await dpage.goto(base + "/");
    report.darkBackground = await dpage.evaluate(() => getComputedStyle(document.body).backgroundColor);
    report.darkText = await dpage.evaluate(() => getComputedStyle(document.body).color);

    const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
    const ppage = await phone.newPage();
    watch(ppage);
    await ppage.goto(base + "/checks/demo-flaky");
    await ppage.goto(base + "/");
    report.narrow = await ppage.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      width: window.innerWidth,
      checks: document.querySelectorAll(".check").length,
    }));

    const nojs = await browser.newContext({ javaScriptEnabled: false });
    const npage = await nojs.newPage();
    watch(npage);
    await npage.goto(base + "/?state=down");
    report.noJsDown = await npage.$$eval(".check .name", (els) => els.map((e) => e.textContent));
  } finally {
    await browser.close();
    agent.proc.kill("SIGTERM");
  }
  process.stdout.write(JSON.stringify(report) + "\n");
}

main().catch((err) => { process.stderr.write(String(err && err.stack || err) + "\n"); process.exit(1); });
