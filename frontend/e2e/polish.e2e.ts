/**
 * The output search and wrapped output, the admin page's units, field errors and user paging, the
 * history filter in the URL, the run timer and the editor/output split.
 * Screenshots: test-results/screenshots/polish-*.png.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Backend } from './backend';
import { accessibilityProblems, launch, screenshot, setScript, signIn, waitForStatus } from './browser';

// Enough registrations from one address to page the admin's list of users past 50.
const backend = new Backend({ PODRUN_SIGNIN__REGISTRATIONS_PER_CLIENT_PER_HOUR: '500' });
let browser: Browser;
let context: BrowserContext;
let page: Page;
const admin = `polish-${Date.now()}@example.com`;
const password = 'correct horse battery';
let runId = '';

const SIZES = [
	{ width: 390, height: 844 },
	{ width: 1440, height: 900 }
] as const;

/** Run the script in the editor; the run's id (it may still be going). */
async function start(script: string): Promise<string> {
	await page.goto(`${backend.url}/`);
	await setScript(page, script);
	const submitted = page.waitForResponse((response) => response.request().postData()?.includes('SubmitExecution') ?? false);
	await page.getByTestId('run').click();
	const id: string = (await (await submitted).json()).data.submitExecution.id;
	await page.waitForURL((url) => url.searchParams.get('run') === id);
	return id;
}

async function setWrap(on: boolean): Promise<void> {
	await page.goto(`${backend.url}/settings`);
	const sync = page.getByTestId('settings-sync');
	await sync.filter({ hasText: 'Saved to your account' }).waitFor();
	const box = page.getByLabel('Wrap long lines');
	if ((await box.isChecked()) !== on) await box.click();
	// Saved to the account before the page is left (the run page reads it from there).
	await expect.poll(async () => JSON.parse((await sync.getAttribute('data-saved')) || '{}').lineWrapping).toBe(on);
}

beforeAll(async () => {
	await backend.start();
	backend.createAdmin(admin, password);
	browser = await launch();
	context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
	page = await context.newPage();
	await signIn(page, backend.url, admin, password);
	runId = await start(
		'for i in range(1, 301):\n    print(f"row {i}" + (" NEEDLE here" if i in (17, 250) else ""))\nprint("x" * 400)\n'
	);
	await waitForStatus(page, 'SUCCEEDED');
});

afterEach(async ({ task }) => {
	if (task.result?.state === 'fail') await screenshot(page, `failed-${task.name.replace(/\W+/g, '-')}`);
});

afterAll(async () => {
	await browser?.close();
	await backend.stop();
});

describe('output', () => {
	test('the search finds lines the virtualised view has not drawn, steps through them, and filters', async () => {
		await page.setViewportSize(SIZES[1]);
		await page.goto(`${backend.url}/runs/${runId}`);
		await page.getByTestId('line-text').first().waitFor();
		const search = page.getByTestId('output-search');
		await search.fill('needle');
		await expect.poll(() => page.getByTestId('output-matches').textContent()).toBe('1 of 2');
		await expect.poll(() => page.locator('[data-match="current"]').getAttribute('data-line')).toBe('17');
		expect(await page.locator('[data-match="current"] mark').textContent()).toBe('NEEDLE');

		await search.press('Enter');
		await expect.poll(() => page.getByTestId('output-matches').textContent()).toBe('2 of 2');
		// Line 250 is far below the first screen: the view scrolled to it.
		await expect.poll(() => page.locator('[data-match="current"]').getAttribute('data-line')).toBe('250');
		expect(await page.locator('[data-match="current"]').isVisible()).toBe(true);
		await page.getByRole('button', { name: 'Next match' }).click();
		await expect.poll(() => page.getByTestId('output-matches').textContent()).toBe('1 of 2');
		await page.getByRole('button', { name: 'Previous match' }).click();
		await expect.poll(() => page.getByTestId('output-matches').textContent()).toBe('2 of 2');

		await page.getByTestId('only-matches').check();
		await expect.poll(() => page.locator('[data-testid="output"] [data-line]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-line')))).toEqual(['17', '250']);
		expect(await page.getByTestId('output-empty').count()).toBe(0);
		for (const size of SIZES) {
			await page.setViewportSize(size);
			await screenshot(page, `polish-output-search-${size.width}`);
			expect(await accessibilityProblems(page)).toEqual([]);
		}

		await search.fill('no such text');
		await expect.poll(() => page.getByTestId('output-matches').textContent()).toBe('No match');
		await page.getByTestId('only-matches').uncheck();
		await search.fill('');
		await expect.poll(() => page.locator('[data-testid="output"] [data-line]').count()).toBeGreaterThan(2);

		// Ctrl/Cmd+F in the output goes to the search box (the browser's find cannot see unrendered rows).
		await page.getByTestId('output').focus();
		await page.keyboard.press('ControlOrMeta+f');
		expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('output-search');
	});

	test('"Wrap long lines" wraps the output too', async () => {
		for (const wrap of [true, false]) {
			await setWrap(wrap);
			for (const size of SIZES) {
				await page.setViewportSize(size);
				await page.goto(`${backend.url}/runs/${runId}`);
				const output = page.getByTestId('output');
				await page.locator('[data-line="301"]').waitFor();
				expect(await output.getAttribute('data-wrap')).toBe(String(wrap));
				const row = await page.locator('[data-line="301"]').boundingBox();
				const sideways = await output.evaluate((element) => element.scrollWidth > element.clientWidth);
				if (wrap) {
					// 400 characters take several rows and nothing scrolls sideways.
					expect(row!.height).toBeGreaterThan(40);
					expect(sideways).toBe(false);
					await screenshot(page, `polish-output-wrapped-${size.width}`);
				} else {
					expect(row!.height).toBe(20);
					expect(sideways).toBe(true);
				}
			}
		}
	});
});

describe('admin', () => {
	test('limits are shown and saved in seconds, MiB and KiB; an error sits beside its field', async () => {
		await page.setViewportSize(SIZES[1]);
		await page.goto(`${backend.url}/admin`);
		await page.getByTestId('system-settings').waitFor();
		const wall = page.getByLabel('USER maximum Wall time in s', { exact: true });
		const output = page.getByLabel('USER maximum Output in KiB', { exact: true });
		const ceiling = Number((await page.getByTestId('ceiling-wallTimeMs').textContent())!.replace(' s', ''));
		// The API holds milliseconds and bytes; the form shows seconds and KiB.
		const settings = await (
			await fetch(`${backend.url}/graphql`, {
				method: 'POST',
				headers: { 'content-type': 'application/json', authorization: `Bearer ${await token()}` },
				body: JSON.stringify({ query: '{ systemSettings { roles { role maxLimits { wallTimeMs outputBytes } } } }' })
			})
		).json();
		const user = settings.data.systemSettings.roles.find((r: { role: string }) => r.role === 'USER').maxLimits;
		expect(Number(await wall.inputValue())).toBe(user.wallTimeMs / 1000);
		expect(Number(await output.inputValue())).toBe(user.outputBytes / 1024);

		await wall.fill(String(ceiling + 10));
		await page.getByRole('button', { name: 'Save settings' }).click();
		const problem = page.locator('#policy-error-roles\\.user\\.maxlimits\\.walltimems');
		await problem.waitFor();
		expect(await problem.textContent()).toContain(`between 0.001 s and ${ceiling} s`);
		expect(await wall.getAttribute('aria-invalid')).toBe('true');
		expect(await page.evaluate(() => document.activeElement?.id)).toBe('policy-roles.user.maxlimits.walltimems');
		// Beside the field, not at the top of the page, and no internal path in sight.
		const [fieldBox, problemBox] = [await wall.boundingBox(), await problem.boundingBox()];
		expect(Math.abs(problemBox!.y - (fieldBox!.y + fieldBox!.height))).toBeLessThan(30);
		expect(await page.getByTestId('admin-error').count()).toBe(0);
		expect(await page.locator('body').textContent()).not.toContain('maxLimits');
		for (const size of SIZES) {
			await page.setViewportSize(size);
			await screenshot(page, `polish-admin-field-error-${size.width}`);
		}
		expect(await accessibilityProblems(page)).toEqual([]);

		await page.setViewportSize(SIZES[1]);
		await wall.fill('12.5');
		await page.getByRole('button', { name: 'Save settings' }).click();
		await page.getByTestId('settings-saved').waitFor();
		expect(await problem.count()).toBe(0);
		await page.reload();
		await page.getByTestId('system-settings').waitFor();
		expect(await page.getByLabel('USER maximum Wall time in s', { exact: true }).inputValue()).toBe('12.5');
	});
});

/** An access token of the admin, from the `login` mutation (a sign-in of its own, beside the page's). */
async function token(): Promise<string> {
	const answer = await fetch(`${backend.url}/graphql`, {
		method: 'POST',
		headers: { 'content-type': 'application/json' },
		body: JSON.stringify({
			query: 'mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }',
			variables: { email: admin, password }
		})
	});
	return (await answer.json()).data.login.accessToken;
}

describe('history', () => {
	test('the status filter and a text search over the scripts live in the URL', async () => {
		await page.setViewportSize(SIZES[1]);
		await start('import sys\nsys.exit(3)\n');
		await waitForStatus(page, 'FAILED');
		await page.goto(`${backend.url}/history?status=FAILED`);
		await page.getByTestId('history-row').first().waitFor();
		expect(await page.locator('#status-filter').inputValue()).toBe('FAILED');
		const statuses = () => page.locator('[data-testid="history-row"] [data-testid="status"]').evaluateAll((e) => e.map((x) => x.getAttribute('data-status')));
		await expect.poll(statuses).toEqual(['FAILED']);

		await page.locator('#status-filter').selectOption('SUCCEEDED');
		await expect.poll(() => new URL(page.url()).searchParams.get('status')).toBe('SUCCEEDED');
		await expect.poll(statuses).toEqual(['SUCCEEDED']);
		await page.locator('#status-filter').selectOption('');
		await expect.poll(() => new URL(page.url()).searchParams.has('status')).toBe(false);
		await expect.poll(() => page.getByTestId('history-row').count()).toBe(2);

		await page.getByLabel('Script contains').fill('sys.exit');
		await expect.poll(() => new URL(page.url()).searchParams.get('q')).toBe('sys.exit');
		await expect.poll(statuses).toEqual(['FAILED']);
		await page.reload();
		await page.getByTestId('history-row').first().waitFor();
		expect(await page.getByLabel('Script contains').inputValue()).toBe('sys.exit');
		await expect.poll(statuses).toEqual(['FAILED']);
		await page.getByLabel('Script contains').fill('nothing like this');
		await expect.poll(() => page.getByTestId('history').textContent()).toContain('No run loaded has “nothing like this” in its script');
		await page.getByLabel('Script contains').fill('sys.exit');
		for (const size of SIZES) {
			await page.setViewportSize(size);
			await screenshot(page, `polish-history-filter-${size.width}`);
			expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(size.width);
			expect(await accessibilityProblems(page)).toEqual([]);
		}
	});
});

describe('a run in progress', () => {
	test('shows how long it has waited and how long the queue is, then how long it has run', async () => {
		await page.setViewportSize(SIZES[1]);
		await backend.stopWorker();
		try {
			await start('import time\ntime.sleep(4)\nprint("done")\n');
			await waitForStatus(page, 'QUEUED');
			await expect.poll(() => page.getByTestId('elapsed').textContent()).toMatch(/^\s*Waiting 0:0\d/);
			await expect.poll(() => page.getByTestId('queue-length').textContent()).toContain('1 run in the queue');
			const before = await page.getByTestId('elapsed').textContent();
			await expect.poll(() => page.getByTestId('elapsed').textContent()).not.toBe(before);
			for (const size of SIZES) {
				await page.setViewportSize(size);
				await screenshot(page, `polish-queued-${size.width}`);
			}
		} finally {
			backend.startWorker();
		}
		await waitForStatus(page, 'RUNNING');
		await expect.poll(() => page.getByTestId('elapsed').textContent()).toMatch(/Running 0:0[1-9]/);
		expect(await page.getByTestId('queue-length').count()).toBe(0);
		await waitForStatus(page, 'SUCCEEDED');
		expect(await page.getByTestId('elapsed').count()).toBe(0);
	});
});

describe('the editor page', () => {
	test('a divider between editor and output is dragged or moved with the arrow keys, and remembered', async () => {
		await page.setViewportSize(SIZES[1]);
		await page.goto(`${backend.url}/`);
		const split = page.getByTestId('split');
		await split.waitFor();
		const editorWidth = async () => (await page.locator('section[aria-labelledby="editor-title"]').boundingBox())!.width;
		expect(await split.getAttribute('aria-valuenow')).toBe('50');

		await split.focus();
		for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowLeft');
		expect(await split.getAttribute('aria-valuenow')).toBe('40');
		expect(Math.abs((await editorWidth()) - 1440 * 0.4)).toBeLessThan(12);
		await page.keyboard.press('End');
		expect(await split.getAttribute('aria-valuenow')).toBe('80');

		const box = (await split.boundingBox())!;
		await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
		await page.mouse.down();
		await page.mouse.move(1000, box.y + box.height / 2, { steps: 5 });
		await page.mouse.up();
		expect(Number(await split.getAttribute('aria-valuenow'))).toBe(Math.round((1000 / 1440) * 100));
		await screenshot(page, 'polish-split-1440');
		expect(await accessibilityProblems(page)).toEqual([]);

		await page.reload();
		await split.waitFor();
		expect(Number(await split.getAttribute('aria-valuenow'))).toBe(69);

		// A phone stacks editor and output: no divider, nothing wider than the screen.
		await page.setViewportSize(SIZES[0]);
		expect(await split.isVisible()).toBe(false);
		expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
		await screenshot(page, 'polish-split-390');
		await page.setViewportSize(SIZES[1]);
		await split.focus();
		await page.keyboard.press('Home');
		for (let i = 0; i < 15; i++) await page.keyboard.press('ArrowRight');
		expect(await split.getAttribute('aria-valuenow')).toBe('50');
	});
});

describe('admin users', () => {
	test('the list of users pages past 50 with "Load more"', async () => {
		await page.setViewportSize(SIZES[1]);
		const emails = Array.from({ length: 55 }, (_, i) => `paged-${String(i).padStart(2, '0')}-${Date.now()}@example.com`);
		for (let i = 0; i < emails.length; i += 5) {
			await Promise.all(
				emails.slice(i, i + 5).map(async (email) => {
					const answer = await fetch(`${backend.url}/graphql`, {
						method: 'POST',
						headers: { 'content-type': 'application/json' },
						body: JSON.stringify({
							query: 'mutation($email: String!, $password: String!) { register(email: $email, password: $password) { user { id } } }',
							variables: { email, password }
						})
					});
					expect((await answer.json()).errors).toBeUndefined();
				})
			);
		}
		await page.goto(`${backend.url}/admin`);
		const rows = page.getByTestId('user-row');
		await expect.poll(() => rows.count()).toBe(50);
		await page.getByTestId('users-more').click();
		await expect.poll(() => rows.count()).toBe(56);
		expect(await page.getByTestId('users-more').count()).toBe(0);
		const shown = await page.getByTestId('user-row-email').allTextContents();
		expect(new Set(shown).size).toBe(56);
		expect(shown).toEqual(expect.arrayContaining([...emails, admin]));

		// A search starts from its own first page.
		await page.getByLabel('Search by email').fill('paged-');
		await expect.poll(() => rows.count()).toBe(50);
		await page.getByTestId('users-more').click();
		await expect.poll(() => rows.count()).toBe(55);
		await page.getByTestId('users-more').waitFor({ state: 'detached' });
		for (const size of SIZES) {
			await page.setViewportSize(size);
			await screenshot(page, `polish-admin-users-${size.width}`);
		}
	});
});
