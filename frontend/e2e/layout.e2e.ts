/**
 * Every signed-in page at a phone's and a laptop's size, in both themes: nothing wider than the
 * screen, the controls that matter on screen, and no serious or critical axe-core violation.
 * Screenshots go to test-results/screenshots/layout-<page>-<width>-<theme>.png.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { Backend } from './backend';
import { accessibilityProblems, launch, screenshot, signIn } from './browser';

const backend = new Backend();
let browser: Browser;
let runId = '';
const email = `layout-${Date.now()}@example.com`;
const password = 'correct horse battery';

const SIZES = [
	{ width: 390, height: 844 },
	{ width: 1440, height: 900 }
] as const;
const THEMES = ['light', 'dark'] as const;

const PAGES: { name: string; path: () => string; ready: (page: Page) => Promise<unknown> }[] = [
	{ name: 'editor', path: () => '/', ready: (page) => page.getByTestId('runtime-limits').waitFor() },
	{ name: 'run', path: () => `/runs/${runId}`, ready: (page) => page.getByTestId('line-text').first().waitFor() },
	{ name: 'kernels', path: () => '/kernels', ready: (page) => page.getByTestId('no-kernels').waitFor() },
	{ name: 'history', path: () => '/history', ready: (page) => page.getByTestId('history-row').first().waitFor() },
	{ name: 'settings', path: () => '/settings', ready: (page) => page.getByTestId('settings-sync').waitFor() },
	{ name: 'admin', path: () => '/admin', ready: (page) => page.getByTestId('system-settings').waitFor() }
];

beforeAll(async () => {
	await backend.start();
	backend.createAdmin(email, password);
	browser = await launch();
	// One run with a long script line and output, for the run and history pages.
	const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
	const page = await context.newPage();
	await signIn(page, backend.url, email, password);
	await page.locator('.cm-content').click();
	await page.keyboard.press('ControlOrMeta+a');
	await page.keyboard.insertText(`values = [${'1234567890, '.repeat(12)}0]\nprint("a long line of output " * 8)\nprint(sum(values))\n`);
	await page.getByTestId('run').click();
	await page.waitForURL(/\?run=/);
	runId = new URL(page.url()).searchParams.get('run') ?? '';
	await page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.getAttribute('data-status') === 'SUCCEEDED');
	await context.close();
});

afterAll(async () => {
	await browser?.close();
	await backend.stop();
});

/** The box of the element, asserted to lie within the screen's width. */
async function onScreen(page: Page, selector: string): Promise<{ x: number; y: number; width: number; height: number }> {
	const box = await page.locator(selector).first().boundingBox();
	expect(box, selector).not.toBeNull();
	const width = page.viewportSize()?.width ?? 0;
	expect(box!.x, selector).toBeGreaterThanOrEqual(0);
	expect(box!.x + box!.width, selector).toBeLessThanOrEqual(width);
	return box!;
}

describe.each(SIZES)('at $width×$height', (size) => {
	describe.each(THEMES)('%s theme', (theme) => {
		let page: Page;

		beforeAll(async () => {
			const context = await browser.newContext({ viewport: size, colorScheme: theme });
			page = await context.newPage();
			await signIn(page, backend.url, email, password);
		});

		afterAll(async () => {
			await page.context().close();
		});

		test.each(PAGES)('$name page fits the screen and passes axe-core', async ({ name, path, ready }) => {
			await page.goto(`${backend.url}${path()}`);
			await ready(page);
			expect(await page.evaluate(() => document.documentElement.classList.contains('dark'))).toBe(theme === 'dark');
			await screenshot(page, `layout-${name}-${size.width}-${theme}`);
			const widths = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, screen: window.innerWidth }));
			expect(widths.page, 'the page is no wider than the screen').toBeLessThanOrEqual(widths.screen);
			await onScreen(page, 'header button:has-text("Sign out")');
			expect(await accessibilityProblems(page)).toEqual([]);
		});

		test('the editor keeps Run on screen, clear of the runtime menu, and gives the script real height', async () => {
			await page.goto(`${backend.url}/`);
			await page.locator('.cm-content').waitFor();
			const run = await onScreen(page, '[data-testid="run"]');
			const runtime = await onScreen(page, '#runtime');
			const apart = runtime.x + runtime.width <= run.x || run.x + run.width <= runtime.x || runtime.y + runtime.height <= run.y || run.y + run.height <= runtime.y;
			expect(apart, 'the runtime menu does not overlap Run').toBe(true);
			const editor = await page.getByTestId('editor').boundingBox();
			expect(editor!.height, 'the editor shows more than a few lines').toBeGreaterThanOrEqual(size.height * 0.35);
		});

		test('admin: Unlock forgets failed sign-ins; runs show short ids', async () => {
			await page.goto(`${backend.url}/admin`);
			await page.getByRole('button', { name: `Unlock sign-in of ${email}` }).click();
			await expect.poll(() => page.getByTestId('user-unlocked').innerText()).toBe(`${email} may sign in again from anywhere.`);
			await expect.poll(() => page.getByRole('link', { name: /^Run [0-9a-f]{8} · Python/ }).count()).toBeGreaterThan(0);
		});

		test('history shows a readable preview of each script', async () => {
			await page.goto(`${backend.url}/history`);
			const preview = page.getByTestId('history-preview').first();
			await preview.waitFor();
			expect((await preview.boundingBox())!.width).toBeGreaterThanOrEqual(Math.min(size.width - 80, 300));
		});
	});
});
