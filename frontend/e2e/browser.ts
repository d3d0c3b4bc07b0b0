/** Debian's Chromium, driven by playwright-core (no browser downloads), and screenshot helpers. */
import { chromium, type Browser, type Page } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { RESULTS } from './backend';

export const SCREENSHOTS = resolve(RESULTS, 'screenshots');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

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

/** Sign in through the form and wait for the editor. */
export async function signIn(page: Page, url: string, email: string, password: string): Promise<void> {
	await page.goto(`${url}/signin`);
	await page.getByLabel('Email').fill(email);
	await page.getByLabel('Password', { exact: true }).fill(password);
	await page.locator('form button[type="submit"]').click();
	// The editor may go on to ?run=<the run it last started>.
	await page.waitForURL((address) => address.pathname === '/');
}

/** axe-core's serious and critical violations on the page, as "rule: targets" lines (none is a pass). */
export async function accessibilityProblems(page: Page): Promise<string[]> {
	// Colours caught mid-transition (a theme just switched, a button just enabled) are not the page's colours.
	await page.evaluate(() =>
		Promise.all(
			document
				.getAnimations()
				.filter((animation) => animation.effect?.getTiming().iterations !== Infinity)
				.map((animation) => animation.finished.catch(() => undefined))
		)
	);
	await page.addScriptTag({ path: AXE });
	const violations = await page.evaluate(async () => {
		const axe = (window as unknown as { axe: { run: (context: Document) => Promise<{ violations: Violation[] }> } }).axe;
		return (await axe.run(document)).violations;
	});
	return violations
		.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
		.map((violation) => `${violation.id}: ${violation.nodes.map((node) => node.target.join(' ')).join(', ')}`);
}

interface Violation {
	id: string;
	impact: string | null;
	nodes: { target: string[] }[];
}

/** Replace the editor's script; insertText types it as one edit, without the editor's auto-indent. */
export async function setScript(page: Page, script: string): Promise<void> {
	await page.locator('.cm-content').click();
	await page.keyboard.press('ControlOrMeta+a');
	await page.keyboard.press('Delete');
	await page.keyboard.insertText(script);
}

/** Wait until the first status badge on the page shows one of `values`. */
export async function waitForStatus(page: Page, ...values: string[]): Promise<void> {
	await page.waitForFunction(
		(wanted) => wanted.includes(document.querySelector('[data-testid="status"]')?.getAttribute('data-status') ?? ''),
		values,
		{ timeout: 30_000 }
	);
}
