// The web page's journey in headless Chromium, against the local server
// and its demo fleet: sign up with the code from the local outbox, verify,
// sign in, open the platform dashboard and see drift flagged on the known
// drifting service, compare stg → prod, download the CSV, log out.
// Screenshots and the CSV go to ARTIFACTS (default target/browser-artifacts).
// Every step is bounded; any failure exits 1.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const root = new URL("../../", import.meta.url).pathname;
const serverBin = process.env.LOCAL_SERVER || join(root, "target/debug/release-dashboard-local");
const artifacts = process.env.ARTIFACTS || join(root, "target/browser-artifacts");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
// fake_kube::fleet::scenario::DRIFTING_SERVICE of the brief fleet: a release
// ahead in each earlier stage at every tick.
const DRIFTING = "ledger-api";
const EMAIL = "browser@example.com";
const PASSWORD = "a long browser passphrase";
// The README's screenshot is this test's, taken later in the demo's story:
// DEMO_TICK=2 SETTLE_SECONDS=13 (tick 6: a stuck rollout, a re-pushed tag,
// a hotfix that skipped stg, an unreachable cluster). The test itself runs
// the demo frozen at tick 0.
const DEMO_TICK = process.env.DEMO_TICK || "0";
const SETTLE_MS = 1000 * Number(process.env.SETTLE_SECONDS || 0);
const STEP_MS = 15_000;
const WHOLE_MS = 120_000 + SETTLE_MS;

const scratch = mkdtempSync(join(tmpdir(), "release-dashboard-browser-"));
const mailDir = join(scratch, "mail");
mkdirSync(artifacts, { recursive: true });

function fail(message) {
  throw new Error(message);
}

/// Starts the server and resolves with its URL once it prints it.
function startServer() {
  const child = spawn(serverBin, ["--port", "0", "--demo-tick", DEMO_TICK, "--mail-dir", mailDir, "--admin-email", EMAIL], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  const log = [];
  child.stderr.on("data", (chunk) => log.push(chunk));
  const url = new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      log.push(chunk);
      const found = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (found) resolve(found[1]);
    });
    child.on("exit", (code) => reject(new Error(`the local server exited (${code}) before listening`)));
    setTimeout(() => reject(new Error("the local server printed no URL within 30 s")), 30_000);
  });
  return { child, url, log };
}

/// The code in the newest message to `to` in the outbox. Mail goes out
/// after the answer, so it may take a moment to arrive.
async function codeFromOutbox(to) {
  for (let attempt = 0; attempt < 100; attempt++) {
    const files = readdirSync(mailDir).filter((f) => f.endsWith(".eml")).sort().reverse();
    for (const file of files) {
      const text = readFileSync(join(mailDir, file), "utf8");
      if (!text.startsWith(`To: ${to}\r\n`)) continue;
      const code = text.split(/\D+/).find((run) => run.length === 6);
      if (code) return code;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return fail(`no code mailed to ${to} in ${mailDir}`);
}

async function step(name, action) {
  const started = Date.now();
  await action();
  console.log(`ok   ${name} (${Date.now() - started} ms)`);
}

async function journey(page, url) {
  await step("the page loads and asks for a sign-in", async () => {
    await page.goto(url);
    await page.waitForURL(/#\/login$/);
    await page.getByRole("button", { name: "Sign in" }).waitFor();
  });
  await step("sign up", async () => {
    await page.getByRole("link", { name: "Create an account" }).click();
    await page.getByLabel("Name").fill("Browser test");
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel("Password (8 or more characters)").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.getByRole("heading", { name: "Verify your address" }).waitFor();
  });
  await step("verify with the code from the local outbox", async () => {
    await page.getByLabel("Code from the email").fill(await codeFromOutbox(EMAIL));
    await page.getByRole("button", { name: "Verify your address" }).click();
    await page.waitForURL(/#\/login$/);
  });
  await step("sign in", async () => {
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Dashboards" }).waitFor();
    await page.locator("#who", { hasText: "(admin)" }).waitFor();
  });
  await step("open the platform dashboard and see drift on " + DRIFTING, async () => {
    await page.waitForTimeout(SETTLE_MS);
    await page.getByRole("link", { name: "DAB platform" }).click();
    const row = page.locator(`#matrix tr[data-service="${DRIFTING}"]`);
    await row.waitFor();
    const classes = (await row.getAttribute("class")) || "";
    if (!classes.split(" ").includes("drift")) fail(`${DRIFTING} is not flagged: class="${classes}"`);
    await row.locator(".badge.drift").waitFor();
    const columns = await page.locator("#matrix thead th").allTextContents();
    if (!columns.some((c) => c.startsWith("dab-platform-prod"))) fail(`columns: ${columns}`);
    const versions = await row.locator("td.cell .v").allTextContents();
    if (new Set(versions).size < 2) fail(`${DRIFTING} runs ${versions} everywhere`);
    await page.screenshot({ path: join(artifacts, "dashboard.png") });
  });
  await step("download the CSV", async () => {
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download CSV" }).click(),
    ]);
    const path = join(artifacts, "platform.csv");
    await download.saveAs(path);
    const csv = readFileSync(path, "utf8");
    const [header, ...lines] = csv.split("\r\n").filter(Boolean);
    if (!header.includes("dab-platform-prod")) fail(`CSV header: ${header}`);
    if (!lines.some((l) => l.startsWith(DRIFTING + ","))) fail(`no ${DRIFTING} line in the CSV`);
  });
  await step("compare stg → prod", async () => {
    await page.locator('select[name="from"]').selectOption("dab-platform-stg");
    await page.locator('select[name="to"]').selectOption("dab-platform-prod");
    await page.getByRole("button", { name: "Compare", exact: true }).click();
    await page.getByRole("heading", { name: "DAB platform: dab-platform-stg → dab-platform-prod" }).waitFor();
    const row = page.locator(`#compare tr[data-service="${DRIFTING}"]`);
    await row.waitFor();
    const standing = await row.locator("td").nth(3).textContent();
    if (!standing.startsWith("behind")) fail(`prod should be behind stg for ${DRIFTING}: ${standing}`);
    await page.screenshot({ path: join(artifacts, "compare.png") });
  });
  await step("open " + DRIFTING + "'s placements and history", async () => {
    await page.getByRole("link", { name: "Back to the matrix" }).click();
    await page.locator(`#matrix tr[data-service="${DRIFTING}"] a`).click();
    await page.getByRole("heading", { name: `${DRIFTING} in DAB platform` }).waitFor();
    await page.getByRole("heading", { name: "History" }).waitFor();
    const changes = await page.locator("table").last().locator("tbody tr").count();
    if (changes === 0) fail(`no history for ${DRIFTING}`);
  });
  await step("find where " + DRIFTING + "'s image runs", async () => {
    await page.getByRole("link", { name: "Images" }).click();
    await page.locator('input[name="q"]').fill("dab/" + DRIFTING);
    await page.getByRole("button", { name: "Search" }).click();
    await page.locator("tbody tr").first().waitFor();
    const environments = await page.locator("tbody tr td:nth-child(3)").allTextContents();
    if (!environments.includes("dab-platform-prod")) fail(`image found in ${environments}`);
  });
  await step("hostile names read as they are, cut with the whole in a tooltip, nothing stray", async () => {
    // The real dashboard answer, with cluster data an attacker could set.
    const bidi = "invoice-\u202egnp.exe";
    const long = "x".repeat(200);
    const longVersion = "9".repeat(160);
    const answer = /\/dashboards\/platform(\?.*)?$/;
    await page.route(answer, async (route) => {
      const response = await route.fetch();
      const body = await response.json();
      body.items[0].service = bidi;
      body.items[1].service = long;
      body.items[1].cells.find((c) => c).versions = [longVersion];
      delete body.next;
      await route.fulfill({ response, json: body });
    });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole("link", { name: "Dashboards" }).click();
    await page.getByRole("link", { name: "DAB platform" }).click();
    await page.locator(`#matrix tr[data-service="${long}"]`).waitFor();
    const text = await page.locator("main").innerText();
    if (!text.includes("invoice-⟪U+202E⟫gnp.exe")) fail("the bidi override is not shown by its code point");
    if (/[\u202a-\u202e\u200b-\u200f]/.test(text)) fail("a hidden character reached the page's text");
    const tooltip = await page.locator(`#matrix tr[data-service="${long}"] td:first-child .clip`).getAttribute("title");
    if (tooltip !== long) fail(`the long name's tooltip is ${tooltip}`);
    const versionTip = await page.locator(`#matrix tr[data-service="${long}"] td.cell .v`).first().getAttribute("title");
    if (!versionTip.startsWith(longVersion + "\nfrom the ")) fail(`the long version's tooltip is ${versionTip}`);
    const stray = await page.evaluate(() => [...document.querySelectorAll("main, main *")].some((node) =>
      [...node.childNodes].some((c) => c.nodeType === Node.TEXT_NODE && /\b(null|undefined)\b/.test(c.textContent))));
    if (stray) fail("a stray null or undefined is on the page");
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    if (width > 1280) fail(`the page is ${width} px wide in a 1280 px window`);
    await page.screenshot({ path: join(artifacts, "hostile-names.png") });
    await page.unroute(answer);
    await page.setViewportSize({ width: 1440, height: 900 });
  });
  await step("log out, and the old session is refused", async () => {
    const token = await page.evaluate(() => sessionStorage.getItem("token"));
    if (!token) fail("no session token in the tab");
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    const status = await page.evaluate(async (t) => (await fetch("/auth/me", { headers: { Authorization: "Bearer " + t } })).status, token);
    if (status !== 401) fail(`the old token still answers ${status}`);
    if (await page.evaluate(() => sessionStorage.getItem("token"))) fail("the token is still stored");
  });
}

async function main() {
  const server = startServer();
  let context;
  const problems = [];
  const deadline = setTimeout(() => {
    console.error(`the journey took longer than ${WHOLE_MS / 1000} s`);
    server.child.kill("SIGKILL");
    process.exit(1);
  }, WHOLE_MS);
  try {
    const url = await server.url;
    context = await chromium.launchPersistentContext(join(scratch, "profile"), {
      executablePath: chromiumPath,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
      viewport: { width: 1440, height: 900 },
      acceptDownloads: true,
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(STEP_MS);
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      // The API's own 4xx answers are not faults of the page.
      if (message.type() === "error" && !/status of 4\d\d/.test(message.text())) problems.push(`console: ${message.text()}`);
    });
    await journey(page, url);
    if (problems.length) fail(problems.join("\n"));
    console.log(`browser journey passed; screenshots in ${artifacts}`);
  } catch (error) {
    console.error(`FAIL ${error.message}`);
    writeFileSync(join(artifacts, "server.log"), Buffer.concat(server.log.map((c) => Buffer.from(c))));
    if (context) {
      const page = context.pages()[0];
      if (page) await page.screenshot({ path: join(artifacts, "failure.png") }).catch(() => {});
    }
    process.exitCode = 1;
  } finally {
    clearTimeout(deadline);
    if (context) await context.close().catch(() => {});
    server.child.kill("SIGTERM");
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
