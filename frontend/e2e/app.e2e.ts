/**
 * The web client against a real API and worker, in Debian's Chromium. Screenshots of every page in
 * both themes go to test-results/screenshots (ignored by git) for a person to look at.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Backend } from './backend';
import { launch, outputLines, screenshot, setScript, waitForStatus } from './browser';

const backend = new Backend();
let browser: Browser;
let context: BrowserContext;
let page: Page;
const email = `web-${Date.now()}@example.com`;
const password = 'correct horse battery';

const TICKER = `import time
for i in range(1, 21):
    print(f"tick {i}", flush=True)
    time.sleep(0.3)
`;

const FIGURE = `import pandas as pd
import matplotlib.pyplot as plt
sales = pd.read_csv("sales.csv")
print("rows", len(sales))
sales.plot(x="day", y="sales")
plt.show()
print("done")
`;

beforeAll(async () => {
	await backend.start();
	browser = await launch();
	context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
	page = await context.newPage();
});

afterEach(async ({ task }) => {
	if (task.result?.state === 'fail') await screenshot(page, `failed-${task.name.replace(/\W+/g, '-')}`);
});

afterAll(async () => {
	await browser?.close();
	await backend.stop();
});

async function status(): Promise<string | null> {
	return page.getByTestId('status').first().getAttribute('data-status');
}

/** The settings page once the account's settings have loaded (until then they win over a change made here). */
async function openSettings(): Promise<void> {
	await page.goto(`${backend.url}/settings`);
	await page.getByTestId('settings-sync').filter({ hasText: 'Saved to your account' }).waitFor();
}

async function waitForLine(text: string): Promise<void> {
	await page.getByTestId('line-text').filter({ hasText: text }).first().waitFor({ timeout: 20_000 });
}

describe('the web client', () => {
	test('signs up through the register form', async () => {
		await page.goto(`${backend.url}/history`);
		await page.waitForURL(/\/signin\?next=%2Fhistory/);
		await page.getByRole('heading', { name: 'Sign in to Podrun' }).waitFor();
		await screenshot(page, 'signin-light');

		await page.getByRole('button', { name: 'Register' }).click();
		await page.getByLabel('Email').fill(email);
		await page.getByLabel('Password').fill('short');
		await page.getByRole('button', { name: 'Create account' }).click();
		// The browser's own validation stops a too-short password before it is sent.
		expect(page.url()).toContain('/signin');

		await page.getByLabel('Password').fill(password);
		await page.getByRole('button', { name: 'Create account' }).click();
		await page.waitForURL(`${backend.url}/history`);
		await expect.poll(() => page.getByTestId('user-email').textContent()).toBe(email);
	});

	test('streams output while the script runs, then shows how it ended', async () => {
		await page.goto(`${backend.url}/`);
		await setScript(page, TICKER);
		await page.keyboard.press('ControlOrMeta+Enter');
		await waitForLine('tick 2');
		// The first lines are on screen well before the run (6 s) ends.
		expect(await status()).toBe('RUNNING');
		await screenshot(page, 'editor-running-light');

		await waitForStatus(page, 'SUCCEEDED');
		await expect.poll(() => outputLines(page)).toEqual(Array.from({ length: 20 }, (_, i) => `tick ${i + 1}`));
		expect(await page.getByTestId('exit-code').textContent()).toBe('0');
		expect(await page.getByTestId('run-summary').textContent()).toMatch(/Wall.*CPU.*Memory/);
		await screenshot(page, 'finished-light');
	});

	test('cancels a long run', async () => {
		await setScript(page, 'import time\nwhile True:\n    print("still going", flush=True)\n    time.sleep(0.2)\n');
		await page.getByTestId('run').click();
		await waitForLine('still going');
		await page.getByTestId('cancel').click();
		await waitForStatus(page, 'CANCELLED');
		expect(await page.getByTestId('cancel').count()).toBe(0);
	});

	test('feeds stdin given up front', async () => {
		await setScript(page, 'import sys\nfor line in sys.stdin:\n    print("got", line.strip().upper())\n');
		await page.getByLabel('Give stdin up front').check();
		await page.getByLabel('Standard input').fill('ann\nbob\n');
		await page.getByTestId('run').click();
		await waitForStatus(page, 'SUCCEEDED');
		await expect.poll(() => outputLines(page)).toEqual(['got ANN', 'got BOB']);
		await page.getByLabel('Give stdin up front').uncheck();
	});

	test('shows a pandas + matplotlib figure where the script drew it, from an input file', async () => {
		await page.goto(`${backend.url}/`);
		const runtime = page.locator('#runtime');
		const scientific = await runtime.locator('option', { hasText: 'matplotlib' }).last().getAttribute('value');
		await runtime.selectOption(scientific ?? '');
		const packages = (await page.getByTestId('runtime-packages').textContent()) ?? '';
		for (const name of ['numpy', 'pandas', 'matplotlib', 'scipy']) expect(packages).toMatch(new RegExp(`\\b${name} \\d`));
		await page.getByTestId('input-files').setInputFiles({
			name: 'sales.csv',
			mimeType: 'text/csv',
			buffer: Buffer.from('day,sales\n1,3\n2,5\n3,4\n')
		});
		await page.getByTestId('input-file-list').getByText('sales.csv').waitFor();
		await setScript(page, FIGURE);
		await page.getByTestId('run').click();
		await waitForStatus(page, 'SUCCEEDED');
		await page.waitForFunction(() => {
			const image = document.querySelector<HTMLImageElement>('[data-testid="artifact-image"]');
			return image !== null && image.complete && image.naturalWidth === 640;
		});
		const rows = await page
			.locator('[data-testid="output"] [data-line]')
			.evaluateAll((elements) =>
				elements.map((row) =>
					row.querySelector('[data-testid="artifact-image"]') ? 'figure' : row.querySelector('[data-testid="line-text"]')?.textContent
				)
			);
		expect(rows).toEqual(['rows 3', 'figure', 'done']);
		await screenshot(page, 'figure-light');
		await runtime.selectOption({ label: (await runtime.locator('option', { hasText: '(default)' }).textContent()) ?? '' });
	});

	test('takes interactive input while the script runs, joining the prompt like a terminal', async () => {
		await page.goto(`${backend.url}/`);
		await setScript(page, 'name = input("Name: ")\nprint(f"Hello, {name}!")\nimport sys\nprint("rest:", sys.stdin.read().split())\n');
		await page.getByTestId('run').click();
		await waitForLine('Name:');
		const input = page.getByLabel('Input', { exact: true });
		await input.fill('Ada');
		await input.press('Enter');
		await waitForLine('Hello, Ada!');
		await input.fill('more words');
		await input.press('Control+d');
		await waitForStatus(page, 'SUCCEEDED');
		await expect.poll(() => outputLines(page)).toEqual(['Name: Ada', 'Hello, Ada!', 'more words', "rest: ['more', 'words']"]);
	});

	test('a reload mid-run resumes the output with no gap or duplicate', async () => {
		await setScript(page, 'import time\nfor i in range(1, 31):\n    print(f"n={i}", flush=True)\n    time.sleep(0.15)\n');
		await page.getByTestId('run').click();
		await waitForLine('n=5');
		await page.reload();
		await waitForStatus(page, 'SUCCEEDED');
		await expect.poll(() => outputLines(page)).toEqual(Array.from({ length: 30 }, (_, i) => `n=${i + 1}`));
	});

	test('shows a reconnecting state when the API goes away and resumes when it is back', async () => {
		await setScript(page, 'import time\nfor i in range(1, 41):\n    print(f"r={i}", flush=True)\n    time.sleep(0.15)\n');
		await page.getByTestId('run').click();
		await waitForLine('r=3');
		await backend.stopApi();
		await page.getByTestId('reconnecting').waitFor({ timeout: 20_000 });
		await backend.startApi();
		await waitForStatus(page, 'SUCCEEDED');
		await expect.poll(() => outputLines(page)).toEqual(Array.from({ length: 40 }, (_, i) => `r=${i + 1}`));
		expect(await page.getByTestId('reconnecting').count()).toBe(0);
	});

	test('history lists the runs, filters by status and opens their output', async () => {
		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'History' }).click();
		await page.getByTestId('history-row').first().waitFor();
		expect(await page.getByTestId('history-row').count()).toBe(7);
		await screenshot(page, 'history-light');

		await page.getByLabel('Status').selectOption('CANCELLED');
		await expect.poll(() => page.getByTestId('history-row').count()).toBe(1);
		await page.getByTestId('history-row').click();
		await page.waitForURL(/\/runs\//);
		await waitForStatus(page, 'CANCELLED');
		await waitForLine('still going');

		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'History' }).click();
		await page.getByLabel('Status').selectOption('');
		await page.getByTestId('history-row').last().click();
		await waitForStatus(page, 'SUCCEEDED');
		await expect.poll(() => outputLines(page)).toHaveLength(20);
		expect(await page.getByTestId('run-script').textContent()).toBe(TICKER);
		await page.getByRole('button', { name: 'Run again' }).click();
		await waitForLine('tick 1');
		await waitForStatus(page, 'SUCCEEDED');
	});

	test('dark theme, remembered across reloads', async () => {
		await openSettings();
		await page.getByLabel('Dark').check();
		expect(await page.evaluate(() => document.documentElement.classList.contains('dark'))).toBe(true);
		await page.reload();
		await page.getByLabel('Dark').waitFor();
		expect(await page.evaluate(() => document.documentElement.classList.contains('dark'))).toBe(true);

		await page.goto(`${backend.url}/`);
		await setScript(page, TICKER.replace('print(f"tick {i}"', 'print(f"\\033[1;32mtick\\033[0m {i}"'));
		await page.keyboard.press('ControlOrMeta+Enter');
		await waitForLine('tick 3');
		await screenshot(page, 'editor-running-dark');
		await waitForStatus(page, 'SUCCEEDED');
		await screenshot(page, 'finished-dark');
		await page.goto(`${backend.url}/history`);
		await page.getByTestId('history-row').first().waitFor();
		await screenshot(page, 'history-dark');

		await page.getByRole('button', { name: 'Sign out' }).click();
		await page.waitForURL(/\/signin/);
		await screenshot(page, 'signin-dark');
	});

	test('an expired session leads back to sign-in and keeps the script being edited', async () => {
		await page.getByLabel('Email').fill(email);
		await page.getByLabel('Password').fill(password);
		await page.locator('form button[type="submit"]').click();
		await page.waitForURL((url) => url.pathname === '/');
		await setScript(page, 'print("my unsaved work")\n');
		await context.clearCookies();
		// The server forgets nothing here; the next refresh finds no cookie, as after expiry.
		await page.reload();
		await page.waitForURL(/\/signin/);
		await page.getByLabel('Email').fill(email);
		await page.getByLabel('Password').fill(password);
		await page.locator('form button[type="submit"]').click();
		await page.waitForURL((url) => url.pathname === '/');
		await expect.poll(() => page.locator('.cm-content').textContent()).toBe('print("my unsaved work")');
	});

	test('saves, renames, opens and deletes scripts in the Scripts panel', async () => {
		await page.goto(`${backend.url}/`);
		await page.getByText('Saved scripts', { exact: true }).click();
		await setScript(page, 'print("first saved")\n');
		await page.getByLabel('Name for the saved script').fill('first');
		await page.getByRole('button', { name: 'Save', exact: true }).click();
		await expect.poll(() => page.getByTestId('saved-script-name').allTextContents()).toEqual(['first']);
		await setScript(page, 'print("second saved")\n');
		await page.getByLabel('Name for the saved script').fill('second');
		await page.getByRole('button', { name: 'Save', exact: true }).click();
		await expect.poll(() => page.getByTestId('saved-script-name').allTextContents()).toEqual(['second', 'first']);
		// The account's theme is still the dark one the theme test chose.
		await screenshot(page, 'scripts-dark');

		await page.getByRole('button', { name: 'Rename first' }).click();
		await page.getByLabel('New name').fill('renamed');
		await page.getByRole('button', { name: 'OK' }).click();
		await expect.poll(() => page.getByTestId('saved-script-name').allTextContents()).toEqual(['second', 'renamed']);

		await page.getByRole('button', { name: 'Open renamed' }).click();
		await expect.poll(() => page.locator('.cm-content').textContent()).toBe('print("first saved")');

		page.once('dialog', (dialog) => void dialog.accept());
		await page.getByRole('button', { name: 'Delete second' }).click();
		await expect.poll(() => page.getByTestId('saved-script-name').allTextContents()).toEqual(['renamed']);
	});

	test('settings follow the account into another browser', async () => {
		await openSettings();
		await page.getByLabel('Light').check();
		await page.getByLabel('Wrap long lines').check();
		await expect
			.poll(async () => JSON.parse((await page.getByTestId('settings-sync').getAttribute('data-saved')) || '{}'))
			.toMatchObject({ theme: 'LIGHT', lineWrapping: true });
		const other = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'dark' });
		try {
			const second = await other.newPage();
			await second.goto(`${backend.url}/signin`);
			await second.getByLabel('Email').fill(email);
			await second.getByLabel('Password').fill(password);
			await second.locator('form button[type="submit"]').click();
			await second.waitForURL((url) => url.pathname === '/');
			await second.goto(`${backend.url}/settings`);
			await expect.poll(() => second.getByLabel('Wrap long lines').isChecked()).toBe(true);
			expect(await second.getByLabel('Light').isChecked()).toBe(true);
			// Light although this browser prefers dark: the account's choice wins.
			expect(await second.evaluate(() => document.documentElement.classList.contains('dark'))).toBe(false);
		} finally {
			await other.close();
		}
	});

	test('settings list the signed-in devices, and revoking one signs that browser out', async () => {
		const other = await browser.newContext({ viewport: { width: 1280, height: 860 }, userAgent: 'Second browser (e2e)' });
		try {
			const second = await other.newPage();
			await second.goto(`${backend.url}/signin`);
			await second.getByLabel('Email').fill(email);
			await second.getByLabel('Password').fill(password);
			await second.locator('form button[type="submit"]').click();
			await second.waitForURL(`${backend.url}/`);

			await page.goto(`${backend.url}/settings`);
			const devices = page.getByTestId('signed-in-devices');
			const secondRow = devices.getByTestId('sign-in').filter({ hasText: 'Second browser (e2e)' });
			await secondRow.waitFor();
			expect(await devices.locator('[data-testid="sign-in"][data-current="true"]').count()).toBe(1);
			expect(await secondRow.getAttribute('data-current')).toBe('false');
			expect(await secondRow.textContent()).toContain('127.0.0.1');
			await devices.scrollIntoViewIfNeeded();
			await screenshot(page, 'settings-devices');

			await secondRow.getByRole('button', { name: 'Revoke' }).click();
			await expect.poll(() => secondRow.count()).toBe(0);
			// The other browser's cookie no longer refreshes: it is back at sign-in.
			await second.reload();
			await second.waitForURL(/\/signin/);
			// This browser is still signed in.
			await page.reload();
			await devices.getByTestId('sign-in').first().waitFor();
			expect(page.url()).toBe(`${backend.url}/settings`);
		} finally {
			await other.close();
		}
	});

	test('an admin sees users and everyone\'s runs, and a lower quota shows before submissions are refused', async () => {
		const adminEmail = `admin-${Date.now()}@example.com`;
		backend.createAdmin(adminEmail, password);
		const adminContext = await browser.newContext({ viewport: { width: 1280, height: 1000 }, colorScheme: 'light' });
		try {
			const admin = await adminContext.newPage();
			await admin.goto(`${backend.url}/signin`);
			await admin.getByLabel('Email').fill(adminEmail);
			await admin.getByLabel('Password').fill(password);
			await admin.locator('form button[type="submit"]').click();
			await admin.waitForURL((url) => url.pathname === '/');
			await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).click();
			await admin.getByTestId('system-settings').waitFor();
			await admin.getByLabel('Search by email').fill(email);
			await expect.poll(() => admin.getByTestId('user-row-email').allTextContents()).toEqual([email]);
			await expect.poll(() => admin.getByTestId('user-row-runs').textContent()).toMatch(/^\d+ running · \d+ queued$/);
			await expect.poll(async () => (await admin.getByTestId('admin-run-owner').allTextContents()).includes(email)).toBe(true);
			await admin.getByLabel('Search by email').fill('');
			await screenshot(admin, 'admin-light');
			await admin.emulateMedia({ colorScheme: 'dark' });
			await screenshot(admin, 'admin-dark');

			await admin.getByLabel('USER runs in progress').fill('1');
			await admin.getByRole('button', { name: 'Save settings' }).click();
			await expect.poll(() => admin.getByTestId('settings-saved').textContent()).toContain('next submission');

			// The user's quota indicator says so before the next run is refused.
			await page.goto(`${backend.url}/`);
			await expect.poll(() => page.getByTestId('quota-runs').getAttribute('data-level')).toBe('ok');
			await setScript(page, 'import time\nprint("holding the slot", flush=True)\ntime.sleep(20)\n');
			await page.getByTestId('run').click();
			await waitForLine('holding the slot');
			await expect.poll(() => page.getByTestId('quota-runs').getAttribute('data-level')).toBe('full');
			expect(await page.getByTestId('quota-warning').textContent()).toContain('limit reached');
			await screenshot(page, 'quota-full-light');

			// The admin cancels the user's run from the list of everyone's runs.
			await admin.getByRole('button', { name: 'Refresh' }).click();
			await admin.getByTestId('admin-run').filter({ hasText: email }).getByRole('button', { name: 'Cancel' }).first().click();
			await waitForStatus(page, 'CANCELLED');

			await admin.getByLabel('USER runs in progress').fill('8');
			await admin.getByRole('button', { name: 'Save settings' }).click();
			await expect.poll(() => admin.getByTestId('settings-saved').textContent()).toContain('next submission');
		} finally {
			await adminContext.close();
		}
	});

	test('deletes a run from the history and one from its page; the quota shows the storage runs hold', async () => {
		await page.goto(`${backend.url}/`);
		await expect.poll(() => page.getByTestId('quota-storage').textContent()).toMatch(/Storage.*MiB/);
		await setScript(page, 'print("to be deleted")\n');
		await page.getByTestId('run').click();
		await waitForLine('to be deleted');
		await waitForStatus(page, 'SUCCEEDED');

		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'History' }).click();
		await page.getByTestId('history-row').first().waitFor();
		const before = await page.getByTestId('history-row').count();
		page.once('dialog', (dialog) => void dialog.accept());
		await page.getByTestId('history-delete').first().click();
		await expect.poll(() => page.getByTestId('history-row').count()).toBe(before - 1);

		await page.getByTestId('history-row').first().click();
		await page.waitForURL(/\/runs\//);
		await page.getByTestId('delete-run').waitFor();
		page.once('dialog', (dialog) => void dialog.accept());
		await page.getByTestId('delete-run').click();
		await page.waitForURL(/\/history$/);
		await expect.poll(() => page.getByTestId('history-row').count()).toBe(before - 2);
	});

	test('an admin sees the live operations figures: queue, running, runs per minute, first output, errors', async () => {
		const adminEmail = `ops-${Date.now()}@example.com`;
		backend.createAdmin(adminEmail, password);
		const adminContext = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
		try {
			const admin = await adminContext.newPage();
			await admin.goto(`${backend.url}/signin`);
			await admin.getByLabel('Email').fill(adminEmail);
			await admin.getByLabel('Password').fill(password);
			await admin.locator('form button[type="submit"]').click();
			await admin.waitForURL(`${backend.url}/`);
			// A run that has just ended: the figures count it.
			await admin.locator('.cm-content').click();
			await admin.keyboard.press('ControlOrMeta+a');
			await admin.keyboard.press('Delete');
			await admin.keyboard.insertText('print("figures")\n');
			await admin.getByTestId('run').click();
			await admin.getByTestId('line-text').filter({ hasText: 'figures' }).first().waitFor({ timeout: 20_000 });

			await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).click();
			await admin.getByTestId('operations').waitFor();
			const figure = (key: string) => admin.getByTestId(`operations-${key}-value`).textContent();
			await expect.poll(() => figure('p50')).toMatch(/^\d+(\.\d+)? s$/);
			expect(await figure('p95')).toMatch(/^\d+(\.\d+)? s$/);
			expect(Number(await figure('rate'))).toBeGreaterThan(0);
			for (const key of ['queued', 'running', 'errors']) expect(await figure(key)).toMatch(/^\d+$/);
			await screenshot(admin, 'admin-operations-light');
			await admin.emulateMedia({ colorScheme: 'dark' });
			await screenshot(admin, 'admin-operations-dark');
		} finally {
			await adminContext.close();
		}
	});
});

