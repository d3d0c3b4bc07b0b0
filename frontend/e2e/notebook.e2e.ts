/**
 * The notebook on a real kernel, in Chromium against a real API and worker: cells that remember
 * (`x = 41`, then `print(x + 1)` shows 42), Shift+Enter moving on to a new cell, an interrupted
 * endless loop that leaves `x` alone, a matplotlib figure under its cell, a reload that brings every
 * cell and its output back, Restart clearing the state, and Stop. Screenshots at a phone's and a
 * laptop's size in both themes go to test-results/screenshots/notebook-*.png; each view is checked
 * with axe-core (no serious or critical violation).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Browser, Locator, Page } from 'playwright-core';
import { Backend } from './backend';
import { accessibilityProblems, launch, screenshot, signIn } from './browser';

const backend = new Backend();
let browser: Browser;
let page: Page;
const email = `notebook-${Date.now()}@example.com`;
const password = 'correct horse battery';

const FIGURE = 'import matplotlib.pyplot as plt\nplt.plot([1, 3, 2, 4])\nplt.title("rising")\nplt.show()';

const cell = (n: number): Locator => page.getByTestId('cell').nth(n - 1);

/** The output lines shown under cell `n`, in order. */
const cellLines = (n: number): Promise<string[]> => cell(n).locator('[data-testid="line-text"]').allTextContents();

async function waitForCell(n: number, ...statuses: string[]): Promise<void> {
	await page.waitForFunction(
		({ index, wanted }) => wanted.includes(document.querySelectorAll('[data-testid="cell"]')[index]?.getAttribute('data-status') ?? ''),
		{ index: n - 1, wanted: statuses },
		{ timeout: 30_000 }
	);
}

async function waitForKernel(...statuses: string[]): Promise<void> {
	await page.waitForFunction(
		(wanted) => wanted.includes(document.querySelector('[data-testid="kernel-status"]')?.getAttribute('data-status') ?? ''),
		statuses,
		{ timeout: 30_000 }
	);
}

/** Type `code` into cell `n` (one edit, without the editor's auto-indent) and press Shift+Enter. */
async function runCell(n: number, code: string): Promise<void> {
	await cell(n).locator('.cm-content').click();
	await page.keyboard.press('ControlOrMeta+a');
	await page.keyboard.insertText(code);
	await page.keyboard.press('Shift+Enter');
}

/** The cell whose editor has the keyboard (1-based), or 0. */
const focusedCell = (): Promise<number> =>
	page.evaluate(() => [...document.querySelectorAll('[data-testid="cell"]')].findIndex((element) => element.contains(document.activeElement)) + 1);

/** No serious or critical axe-core violation, then a screenshot (axe first waits out colour transitions). */
/** Switch the browser's colour scheme and wait until the page has taken it (the account's theme follows the system). */
async function theme(scheme: 'light' | 'dark'): Promise<void> {
	await page.emulateMedia({ colorScheme: scheme });
	await page.waitForFunction((dark) => document.documentElement.classList.contains('dark') === dark, scheme === 'dark');
}

async function looked(name: string): Promise<void> {
	expect(await accessibilityProblems(page), name).toEqual([]);
	await screenshot(page, name);
}

async function graphql<T>(query: string, variables: Record<string, unknown>, token?: string): Promise<T> {
	const response = await fetch(`${backend.url}/graphql`, {
		method: 'POST',
		headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
		body: JSON.stringify({ query, variables })
	});
	const body = (await response.json()) as { data: T; errors?: unknown };
	expect(body.errors).toBeUndefined();
	return body.data;
}

beforeAll(async () => {
	await backend.start();
	await graphql('mutation($email: String!, $password: String!) { register(email: $email, password: $password) { user { id } } }', {
		email,
		password
	});
	browser = await launch();
	const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
	page = await context.newPage();
	await signIn(page, backend.url, email, password);
});

afterEach(async ({ task }) => {
	if (task.result?.state === 'fail') await screenshot(page, `failed-notebook-${task.name.replace(/\W+/g, '-')}`);
});

afterAll(async () => {
	await browser?.close();
	await backend.stop();
});

describe('the notebook', () => {
	test('a new kernel on the scientific runtime: x = 41, then print(x + 1) shows 42', async () => {
		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Kernels' }).click();
		await page.getByTestId('no-kernels').waitFor();
		await looked('notebook-kernels-empty');
		const runtime = page.getByLabel('Runtime');
		const scientific = await runtime.locator('option', { hasText: 'matplotlib' }).last().getAttribute('value');
		await runtime.selectOption(scientific ?? '');
		await page.getByTestId('new-kernel').click();
		await page.waitForURL(/\/kernels\/[0-9a-f-]{36}$/);
		await waitForKernel('IDLE');
		expect(await page.getByTestId('idle-countdown').innerText()).toMatch(/^stops in \d+:\d\d if idle$/);
		expect(await page.getByTestId('cell').count()).toBe(1);

		await runCell(1, 'x = 41');
		// Shift+Enter on the last cell adds an empty one and moves the cursor into it.
		await expect.poll(() => page.getByTestId('cell').count()).toBe(2);
		await expect.poll(focusedCell).toBe(2);
		await page.keyboard.insertText('print(x + 1)');
		await page.keyboard.press('Shift+Enter');
		await waitForCell(2, 'SUCCEEDED');
		expect(await cellLines(2)).toEqual(['42']);
		await waitForCell(1, 'SUCCEEDED');
		expect(await cell(1).getByTestId('cell-output').count(), 'a cell that printed nothing shows no output box').toBe(0);
		await expect.poll(focusedCell).toBe(3);
		await looked('notebook-42-1280-light');
	});

	test("a cell's run page says which kernel it ran in and links back to the notebook", async () => {
		const notebook = page.url();
		await cell(2).getByTestId('cell-run-link').click();
		await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
		const back = page.getByTestId('run-kernel');
		await back.waitFor();
		expect(await back.innerText()).toMatch(/^A cell of kernel \S+: open its notebook$/);
		await back.click();
		await page.waitForURL(notebook);
		await waitForCell(2, 'SUCCEEDED');
	});

	test('an interrupted endless loop ends CANCELLED and leaves x at 41', async () => {
		await runCell(3, 'while True: pass');
		await waitForCell(3, 'RUNNING');
		await waitForKernel('BUSY');
		await page.getByTestId('interrupt').click();
		await waitForCell(3, 'CANCELLED');
		expect(await cell(3).getByTestId('cell-hint').innerText()).toContain('kept its state');
		await runCell(4, 'print(x)');
		await waitForCell(4, 'SUCCEEDED');
		expect(await cellLines(4)).toEqual(['41']);
		await waitForKernel('IDLE');
		await cell(3).scrollIntoViewIfNeeded();
		await looked('notebook-interrupted-1280-light');
	});

	test('a second cell sent while one runs waits for it, and says so', async () => {
		await runCell(5, 'import time\ntime.sleep(2)\nprint("slept")');
		await runCell(6, 'print("after")');
		await waitForCell(6, 'QUEUED', 'STARTING', 'RUNNING', 'SUCCEEDED');
		const waited = await cell(6).getAttribute('data-status');
		if (waited === 'QUEUED') expect(await cell(6).getByTestId('cell-hint').innerText()).toContain('Waiting for the cell before it');
		await waitForCell(6, 'SUCCEEDED');
		expect(await cellLines(5)).toEqual(['slept']);
		expect(await cellLines(6)).toEqual(['after']);
	});

	test('a matplotlib figure shows under its cell', async () => {
		await runCell(7, FIGURE);
		await waitForCell(7, 'SUCCEEDED');
		await cell(7).getByTestId('artifact-image').waitFor({ timeout: 20_000 });
		await cell(7).getByTestId('artifact-image').scrollIntoViewIfNeeded();
		await looked('notebook-figure-1280-light');
		await theme('dark');
		await looked('notebook-figure-1280-dark');
		await theme('light');
	});

	test('a reload brings back every cell, its code and its output', async () => {
		await page.reload();
		await waitForKernel('IDLE');
		await expect.poll(() => page.getByTestId('cell').count()).toBe(8);
		expect(await cell(1).locator('.cm-content').innerText()).toBe('x = 41');
		await waitForCell(2, 'SUCCEEDED');
		await expect.poll(() => cellLines(2)).toEqual(['42']);
		await waitForCell(3, 'CANCELLED');
		await expect.poll(() => cellLines(4)).toEqual(['41']);
		await cell(7).getByTestId('artifact-image').waitFor({ timeout: 20_000 });
		expect(await cell(8).getAttribute('data-status')).toBe('NEW');
		for (const scheme of ['light', 'dark'] as const) {
			await theme(scheme);
			await page.setViewportSize({ width: 390, height: 844 });
			await cell(7).scrollIntoViewIfNeeded();
			const widths = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, screen: window.innerWidth }));
			expect(widths.page, 'the notebook is no wider than a phone').toBeLessThanOrEqual(widths.screen);
			// The kernel's header stays in sight while the cells scroll under it.
			expect((await page.getByTestId('kernel-header').boundingBox())!.y).toBeLessThan(200);
			await looked(`notebook-reloaded-390-${scheme}`);
			await page.setViewportSize({ width: 1280, height: 900 });
			await looked(`notebook-reloaded-1280-${scheme}`);
		}
		await theme('light');
	});

	test('Restart clears the state: x is gone', async () => {
		await page.getByTestId('restart').click();
		await expect.poll(() => page.getByTestId('notebook-notice').innerText()).toContain('were cleared');
		await waitForKernel('IDLE');
		await runCell(8, 'print(x)');
		await waitForCell(8, 'FAILED');
		await expect.poll(async () => (await cellLines(8)).join('\n')).toContain("NameError: name 'x' is not defined");
	});

	test('Stop ends the kernel: cells no longer run, and a new kernel is offered', async () => {
		await page.getByTestId('stop').click();
		await waitForKernel('STOPPED');
		await page.getByTestId('kernel-ended').waitFor();
		expect(await page.getByTestId('idle-countdown').count()).toBe(0);
		for (const button of await page.getByTestId('run-cell').all()) expect(await button.isDisabled()).toBe(true);
		await looked('notebook-stopped-1280-light');
		const stopped = page.url();
		await page.getByTestId('start-another').click();
		await page.waitForURL((url) => url.pathname.startsWith('/kernels/') && url.href !== stopped);
		await waitForKernel('IDLE');
		await page.goto(`${backend.url}/kernels`);
		await expect.poll(() => page.getByTestId('kernel-row').count()).toBe(2);
		await looked('notebook-kernels-1280-light');
	});

	test('the idle countdown runs down, then the kernel stops by itself and says why', async () => {
		const { login } = await graphql<{ login: { accessToken: string } }>(
			'mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }',
			{ email, password }
		);
		const { startKernel } = await graphql<{ startKernel: { id: string } }>(
			'mutation($input: StartKernelInput!) { startKernel(input: $input) { id } }',
			{ input: { idleTimeoutS: 8 } },
			login.accessToken
		);
		await page.goto(`${backend.url}/kernels/${startKernel.id}`);
		await waitForKernel('IDLE');
		expect(await page.getByTestId('idle-countdown').innerText()).toMatch(/^stops in 0:0[0-8] if idle$/);
		await waitForKernel('STOPPED');
		expect(await page.getByTestId('kernel-ended').innerText()).toMatch(/^This kernel has stopped\. Stopped after 8 s without a cell\./);
		expect(await page.getByTestId('idle-countdown').count()).toBe(0);
		expect(await page.getByTestId('start-another').isVisible()).toBe(true);
	});

	test('a kernel whose process dies says so, and its cells no longer run', async () => {
		await page.goto(`${backend.url}/kernels`);
		await page.getByTestId('new-kernel').click();
		await page.waitForURL(/\/kernels\/[0-9a-f-]{36}$/);
		await waitForKernel('IDLE');
		await runCell(1, 'import os, signal\nos.kill(os.getpid(), signal.SIGKILL)');
		await waitForKernel('DEAD');
		await waitForCell(1, 'FAILED', 'ERROR', 'CANCELLED');
		expect(await page.getByTestId('kernel-ended').innerText()).toMatch(/^This kernel has died\. \S/);
		for (const button of await page.getByTestId('run-cell').all()) expect(await button.isDisabled()).toBe(true);
		await looked('notebook-dead-1280-light');
	});
});
