/**
 * Drafts per account, re-running with everything a run had, coming back to a run in progress, and
 * the states a run can be in that are not "it printed something": missing, silent, killed by a signal.
 * Screenshots: test-results/screenshots/{rerun,missing,not-found,signal}-*.png.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Backend } from './backend';
import { accessibilityProblems, launch, outputLines, screenshot, setScript, signIn, waitForStatus } from './browser';

const backend = new Backend();
let browser: Browser;
let context: BrowserContext;
let page: Page;
const stamp = Date.now();
const ann = `ann-${stamp}@example.com`;
const bob = `bob-${stamp}@example.com`;
const password = 'correct horse battery';

async function register(email: string): Promise<void> {
	const response = await fetch(`${backend.url}/graphql`, {
		method: 'POST',
		headers: { 'content-type': 'application/json' },
		body: JSON.stringify({
			query: 'mutation($email: String!, $password: String!) { register(email: $email, password: $password) { user { id } } }',
			variables: { email, password }
		})
	});
	expect((await response.json()).errors).toBeUndefined();
}

/** Run the script in the editor to its end; the run's id. */
async function runToEnd(script: string, ...statuses: string[]): Promise<string> {
	await page.goto(`${backend.url}/`);
	await setScript(page, script);
	const submitted = page.waitForResponse((response) => response.request().postData()?.includes('SubmitExecution') ?? false);
	await page.getByTestId('run').click();
	const id: string = (await (await submitted).json()).data.submitExecution.id;
	await page.waitForURL((url) => url.searchParams.get('run') === id);
	await waitForStatus(page, ...(statuses.length ? statuses : ['SUCCEEDED']));
	return id;
}

async function signOut(): Promise<void> {
	await page.getByRole('button', { name: 'Sign out' }).click();
	await page.waitForURL(/\/signin/);
}

beforeAll(async () => {
	await backend.start();
	await register(ann);
	await register(bob);
	browser = await launch();
	context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
	page = await context.newPage();
});

afterEach(async ({ task }) => {
	if (task.result?.state === 'fail') await screenshot(page, `failed-${task.name.replace(/\W+/g, '-')}`);
});

afterAll(async () => {
	await browser?.close();
	await backend.stop();
});

describe('the editor and runs', () => {
	test('each account has its own draft, and signing out takes it off the screen', async () => {
		await signIn(page, backend.url, ann, password);
		await setScript(page, 'API_KEY = "ann-secret"\n');
		await signOut();
		expect(await page.locator('.cm-content').count()).toBe(0);
		expect(await page.evaluate(() => document.body.innerText)).not.toContain('ann-secret');

		await signIn(page, backend.url, bob, password);
		await expect.poll(() => page.locator('.cm-content').textContent()).toContain('What is your name?');
		expect(await page.locator('.cm-content').textContent()).not.toContain('ann-secret');
		await signOut();

		await signIn(page, backend.url, ann, password);
		await expect.poll(() => page.locator('.cm-content').textContent()).toBe('API_KEY = "ann-secret"');
	});

	test('"Run again" sends the input files again; "Open in editor" keeps the runtime and the files', async () => {
		await page.goto(`${backend.url}/`);
		const runtime = page.locator('#runtime');
		const scientific = (await runtime.locator('option', { hasText: 'matplotlib' }).last().getAttribute('value')) ?? '';
		await runtime.selectOption(scientific);
		await page.getByTestId('input-files').setInputFiles({ name: 'sales.csv', mimeType: 'text/csv', buffer: Buffer.from('day,sales\n1,3\n2,5\n') });
		const id = await runToEnd('print(open("sales.csv").read().split())\n');
		await expect.poll(() => outputLines(page)).toEqual(["['day,sales', '1,3', '2,5']"]);

		await page.goto(`${backend.url}/runs/${id}`);
		await expect.poll(() => page.getByTestId('run-input-files').textContent()).toMatch(/sales\.csv\s+18 B/);
		for (const width of [390, 1440]) {
			await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
			await screenshot(page, `rerun-run-page-${width}`);
		}
		await page.getByRole('button', { name: 'Run again' }).click();
		await page.waitForURL((url) => url.pathname.startsWith('/runs/') && !url.pathname.endsWith(id));
		await waitForStatus(page, 'SUCCEEDED');
		await expect.poll(() => outputLines(page)).toEqual(["['day,sales', '1,3', '2,5']"]);
		await expect.poll(() => page.getByTestId('run-input-files').textContent()).toContain('sales.csv');

		await page.getByRole('button', { name: 'Open in editor' }).click();
		await page.waitForURL(`${backend.url}/`);
		await page.getByTestId('runtime-packages').waitFor();
		expect(await page.locator('#runtime').inputValue()).toBe(scientific);
		await expect.poll(() => page.getByTestId('input-file-list').textContent()).toContain('sales.csv');
		await screenshot(page, 'rerun-open-in-editor-1440');
		await page.locator('#runtime').selectOption({ index: 0 });
		await page.getByRole('button', { name: 'Remove sales.csv' }).click();
	});

	test('back in the editor mid-run, the run is still there and Run stays disabled', async () => {
		await page.goto(`${backend.url}/`);
		await setScript(page, 'import time\nfor i in range(100):\n    print("beat", i, flush=True)\n    time.sleep(0.2)\n');
		await page.getByTestId('run').click();
		await page.getByTestId('line-text').filter({ hasText: 'beat 2' }).waitFor();
		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'History' }).click();
		await page.getByTestId('history-row').first().waitFor();
		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Editor' }).click();
		await page.waitForURL(/\?run=/);
		await waitForStatus(page, 'RUNNING');
		await page.getByTestId('line-text').filter({ hasText: 'beat 5' }).waitFor();
		expect(await page.getByTestId('run').isDisabled()).toBe(true);
		await page.getByTestId('cancel').click();
		await waitForStatus(page, 'CANCELLED');
		expect(await page.getByTestId('run').isDisabled()).toBe(false);
		await page.getByRole('button', { name: 'Clear', exact: true }).click();
		await page.waitForURL(`${backend.url}/`);
		expect(await page.getByTestId('status').count()).toBe(0);
	});

	test('a silent run says it wrote nothing; a signal is named; short ids differ', async () => {
		const silent = await runToEnd('x = 1\n');
		await expect.poll(() => page.getByTestId('output-empty').textContent()).toBe('The run wrote no output.');
		const killed = await runToEnd('import os, signal\nos.kill(os.getpid(), signal.SIGXCPU)\n', 'FAILED', 'TIMED_OUT');
		await expect.poll(() => page.getByTestId('signal').textContent()).toBe('SIGXCPU (24)');
		await screenshot(page, 'signal-1440');
		const shortIds: string[] = [];
		for (const id of [silent, killed]) {
			await page.goto(`${backend.url}/runs/${id}`);
			shortIds.push((await page.getByTestId('run-short-id').textContent()) ?? '');
		}
		expect(shortIds[0]).toMatch(/^[0-9a-f]{8}$/);
		expect(shortIds[0]).not.toBe(shortIds[1]);
		expect(shortIds[0]).toBe(silent.replaceAll('-', '').slice(-8));
	});

	test('Tab indents, Escape then Tab leaves; saving asks before replacing; opening asks before losing work; Ctrl+S', async () => {
		await page.goto(`${backend.url}/`);
		await setScript(page, 'if True:\n');
		await page.keyboard.press('Tab');
		await page.keyboard.type('x = 1');
		await expect.poll(() => page.locator('.cm-content').innerText()).toMatch(/^if True:\n {4}x = 1$/);
		await page.keyboard.press('Shift+Tab');
		await expect.poll(() => page.locator('.cm-content').innerText()).toMatch(/^if True:\nx = 1$/);
		await page.keyboard.press('Escape');
		await page.keyboard.press('Tab');
		expect(await page.evaluate(() => document.activeElement?.classList.contains('cm-content'))).toBe(false);
		await page.getByText('Keyboard shortcuts', { exact: true }).click();
		expect(await page.getByTestId('shortcuts').innerText()).toMatch(/Escape, then Tab\s+Leave the editor/);

		await setScript(page, 'print("one")\n');
		await page.getByText('Saved scripts', { exact: true }).click();
		await page.getByLabel('Name for the saved script').fill('tool.py');
		await page.getByRole('button', { name: 'Save', exact: true }).click();
		await expect.poll(() => page.getByTestId('editor-title').innerText()).toBe('tool.py');
		await setScript(page, 'print("two")\n');
		await expect.poll(() => page.getByTestId('editor-title').innerText()).toMatch(/^tool\.py\s*•/);
		// Saving under a name already taken asks, then replaces it: one script of that name.
		let asked = '';
		page.once('dialog', (dialog) => {
			asked = dialog.message();
			void dialog.accept();
		});
		await page.getByLabel('Name for the saved script').fill('tool.py');
		await page.getByLabel('Name for the saved script').press('Enter');
		await expect.poll(() => asked).toContain('Replace the saved script “tool.py”');
		await expect.poll(() => page.getByTestId('editor-title').innerText()).toBe('tool.py');
		await expect.poll(() => page.getByTestId('saved-script-name').allTextContents()).toEqual(['tool.py']);

		// Ctrl+S saves the opened script in place.
		await setScript(page, 'print("three")\n');
		await page.keyboard.press('ControlOrMeta+s');
		await expect.poll(() => page.getByTestId('editor-title').innerText()).toBe('tool.py');

		// Opening a saved script over unsaved work asks first; dismissing keeps the work.
		await setScript(page, 'print("unsaved work")\n');
		page.once('dialog', (dialog) => void dialog.dismiss());
		await page.getByRole('button', { name: 'Open tool.py' }).click();
		await expect.poll(() => page.locator('.cm-content').textContent()).toBe('print("unsaved work")');
		page.once('dialog', (dialog) => void dialog.accept());
		await page.getByRole('button', { name: 'Open tool.py' }).click();
		await expect.poll(() => page.locator('.cm-content').textContent()).toBe('print("three")');
		await screenshot(page, 'editing-saved-script-1440');
	});

	test('a prompt puts the cursor in the Input box', async () => {
		await page.goto(`${backend.url}/`);
		await setScript(page, 'name = input("Name: ")\nprint("hi", name)\n');
		// The editor comes back to the run it started last; Ctrl+Enter only runs once Run is enabled again.
		await expect.poll(() => page.getByTestId('run').isEnabled()).toBe(true);
		await page.keyboard.press('ControlOrMeta+Enter');
		await page.getByTestId('line-text').filter({ hasText: 'Name:' }).waitFor();
		await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('run-input');
		await page.keyboard.type('Ada\n');
		await waitForStatus(page, 'SUCCEEDED');
		await expect.poll(() => outputLines(page)).toEqual(['Name: Ada', 'hi Ada']);
	});

	test('a script that tries the network is told the sandbox has none', async () => {
		await runToEnd('import urllib.request\nurllib.request.urlopen("http://example.com", timeout=5)\n', 'FAILED');
		await page.getByTestId('no-network').waitFor();
		expect(await page.getByTestId('no-network').innerText()).toContain('without network access');
	});

	test('GraphiQL comes from this site, signed in as the page is', async () => {
		const elsewhere: string[] = [];
		const listen = (request: { url: () => string }) => {
			if (!request.url().startsWith(backend.url) && !request.url().startsWith('ws://127.0.0.1')) elsewhere.push(request.url());
		};
		page.on('request', listen);
		try {
			await page.goto(`${backend.url}/graphiql`);
			const response = page.locator('.graphiql-response');
			// Run is a no-op until GraphiQL has set itself up: press it until an answer shows. Read before pressing
			// again: a press clears the answer while it asks anew, so reading after it can miss every answer.
			await expect
				.poll(
					async () => {
						const shown = await response.innerText();
						if (!shown.includes(ann)) await page.locator('.graphiql-execute-button').click();
						return shown;
					},
					{ timeout: 20_000, interval: 1_000 }
				)
				.toContain(ann);
			await screenshot(page, 'graphiql-1440');
			expect(elsewhere).toEqual([]);
		} finally {
			page.off('request', listen);
		}
	});

	test('a bad or foreign run id shows one "not found" and nothing to cancel; unknown pages a styled 404', async () => {
		await signOut();
		await signIn(page, backend.url, bob, password);
		const bobs = await runToEnd('print("bob only")\n');
		await signOut();
		await signIn(page, backend.url, ann, password);
		for (const width of [390, 1440]) {
			await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
			for (const [name, id] of [
				['bad', 'not-a-run'],
				['foreign', bobs]
			]) {
				await page.goto(`${backend.url}/?run=${id}`);
				await page.getByTestId('run-missing').waitFor();
				expect(await page.getByRole('alert').count()).toBe(1);
				expect(await page.getByTestId('status').count()).toBe(0);
				expect(await page.getByTestId('cancel').count()).toBe(0);
				await screenshot(page, `missing-editor-${name}-${width}`);
				await page.goto(`${backend.url}/runs/${id}`);
				await expect.poll(() => page.getByTestId('run-missing').textContent()).toBe('Run not found');
				expect(await page.getByRole('alert').count()).toBe(1);
				expect(await page.getByTestId('status').count()).toBe(0);
				expect(await page.getByRole('button', { name: 'Run again' }).count()).toBe(0);
				await screenshot(page, `missing-run-page-${name}-${width}`);
			}
			await page.goto(`${backend.url}/no/such/page`);
			await expect.poll(() => page.getByTestId('error-title').textContent()).toContain('There is no page here');
			await screenshot(page, `not-found-${width}`);
		}
		await page.setViewportSize({ width: 1440, height: 900 });
	});

	test('signed out: a landing page, a show-password toggle, and a guessable password refused by the form and the server', async () => {
		await signOut();
		await page.goto(`${backend.url}/signin`);
		expect(await page.getByTestId('landing').innerText()).toContain('sandbox');
		await page.getByRole('button', { name: 'Register' }).click();
		await page.getByLabel('Email').fill(`carol-${stamp}@example.com`);
		await page.getByLabel('Password', { exact: true }).fill('password123');
		await expect.poll(() => page.getByTestId('password-strength').innerText(), { timeout: 10_000 }).toMatch(/too easy to guess/);
		await page.getByRole('button', { name: 'Show' }).click();
		expect(await page.getByLabel('Password', { exact: true }).getAttribute('type')).toBe('text');
		for (const width of [390, 1440]) {
			await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
			await screenshot(page, `register-weak-${width}`);
			expect(await accessibilityProblems(page)).toEqual([]);
		}
		await page.getByRole('button', { name: 'Create account' }).click();
		await expect.poll(() => page.getByRole('alert').innerText()).toContain('harder to guess');
		expect(page.url()).toContain('/signin');

		// The server holds the same rule for any client, naming the field.
		const response = await fetch(`${backend.url}/graphql`, {
			method: 'POST',
			headers: { 'content-type': 'application/json' },
			body: JSON.stringify({
				query: 'mutation { register(email: "dave-' + stamp + '@example.com", password: "password123") { user { id } } }'
			})
		});
		const [refused] = (await response.json()).errors;
		expect(refused.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'password' });

		await page.getByLabel('Password', { exact: true }).fill('tidal quartz lantern');
		await expect.poll(() => page.getByTestId('password-strength').innerText()).toMatch(/Strong|Very strong/);
		await page.getByRole('button', { name: 'Create account' }).click();
		await page.waitForURL((url) => url.pathname === '/');
	});
});
