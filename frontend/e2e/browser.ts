/** Debian's Chromium, driven by playwright-core (no browser downloads), and screenshot helpers. */
import { chromium, type Browser, type Page } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { RESULTS } from './backend';

export const SCREENSHOTS = resolve(RESULTS, 'screenshots');

export function launch(): Promise<Browser> {
	return chromium.launch({
		executablePath: process.env.PODRUN_CHROMIUM ?? '/usr/bin/chromium',
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update']
	});
}

export async function screenshot(page: Page, name: string): Promise<void> {
	mkdirSync(SCREENSHOTS, { recursive: true });
	await page.screenshot({ path: resolve(SCREENSHOTS, `${name}.png`) });
}

/** The text of every output line currently rendered, in order. */
export async function outputLines(page: Page): Promise<string[]> {
	return page.locator('[data-testid="output"] [data-testid="line-text"]').allTextContents();
}
