/**
 * The browser the end-to-end tests drive, without a system package: the headless Chromium
 * that the `@sparticuz/chromium` devDependency ships (unpacked into the temp dir on first
 * use), unless `SLIPWAY_TEST_BROWSER` names another Chromium-family executable
 * (e.g. `/usr/bin/chromium`).
 */
import { chromium, type Browser } from "playwright-core";

/** Headless, no sandbox (the tests may run as root), nothing fetched in the background. */
export const TEST_BROWSER_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface TestBrowserChoice {
  executablePath: string;
  /** Where it came from, for the test's log. */
  source: "SLIPWAY_TEST_BROWSER" | "@sparticuz/chromium";
}

/** `SLIPWAY_TEST_BROWSER` when set, else the bundled Chromium. */
export async function chooseTestBrowser(env: NodeJS.ProcessEnv = process.env): Promise<TestBrowserChoice> {
  const configured = env.SLIPWAY_TEST_BROWSER?.trim();
  if (configured) return { executablePath: configured, source: "SLIPWAY_TEST_BROWSER" };
  const { default: sparticuz } = await import("@sparticuz/chromium");
  return { executablePath: await sparticuz.executablePath(), source: "@sparticuz/chromium" };
}

/**
 * @example
 * const browser = await launchTestBrowser();
 * const page = await (await browser.newContext()).newPage();
 */
export async function launchTestBrowser(env: NodeJS.ProcessEnv = process.env): Promise<Browser> {
  const choice = await chooseTestBrowser(env);
  try {
    return await chromium.launch({ executablePath: choice.executablePath, args: TEST_BROWSER_ARGS });
  } catch (error) {
    throw new Error(`cannot start the test browser ${choice.executablePath} (from ${choice.source}): ${(error as Error).message.split("\n")[0]}`);
  }
}
