/**
 * Sharing a run by link: the owner shares it from the run page, a signed-out visitor opens the link and
 * sees the script and output but not the stdin, a signed-in one forks it into their editor, and a revoked
 * link opens nothing. Screenshots: test-results/screenshots/share-*.png.
 */
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Backend } from './backend';
import { accessibilityProblems, launch, outputLines, screenshot, signIn } from './browser';

const backend = new Backend();
let browser: Browser;
let context: BrowserContext;
let page: Page;
const stamp = Date.now();
const ann = `ann-share-${stamp}@example.com`;
const bob = `bob-share-${stamp}@example.com`;
const password = 'correct horse battery';
const script = 'print("hello", input())\n';

async function graphql<T>(query: string, variables: Record<string, unknown>, token?: string): Promise<T> {
	const response = await fetch(`${backend.url}/graphql`, {
		method: 'POST',
		headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
		body: JSON.stringify({ query, variables })
	});
	const body = await response.json();
	expect(body.errors).toBeUndefined();
	return body.data as T;
}

async function register(email: string): Promise<string> {
	const data = await graphql<{ register: { accessToken: string } }>(
		'mutation($email: String!, $password: String!) { register(email: $email, password: $password) { accessToken } }',
		{ email, password }
	);
	return data.register.accessToken;
}

beforeAll(async () => {
	await backend.start();
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

test('share a run, open it signed out without its stdin, fork it signed in, revoke it', async () => {
	const token = await register(ann);
	const submitted = await graphql<{ submitExecution: { id: string } }>(
		'mutation($input: SubmitExecutionInput!) { submitExecution(input: $input) { id } }',
		{ input: { script, stdin: 'secret-stdin\n' } },
		token
	);
	const id = submitted.submitExecution.id;

	await signIn(page, backend.url, ann, password);
	await page.goto(`${backend.url}/runs/${id}`);
	await page.getByTestId('exit-code').waitFor({ timeout: 30_000 });
	await page.getByTestId('share-run').click();
	await page.getByTestId('create-share').click();
	const url = await page.getByTestId('share-url').inputValue();
	expect(url).toMatch(new RegExp(`^${backend.url}/shared/[\\w-]{43}$`));
	await screenshot(page, 'share-run-page-1440');
	await page.getByRole('button', { name: 'Sign out' }).click();
	await page.waitForURL(/\/signin/);

	for (const [width, height] of [
		[390, 844],
		[1440, 900]
	]) {
		await page.setViewportSize({ width, height });
		await page.goto(url);
		await expect.poll(() => outputLines(page)).toEqual(['hello secret-stdin']);
		expect(await page.getByTestId('shared-script').textContent()).toBe(script);
		expect(new URL(page.url()).pathname).toBe(new URL(url).pathname);
		await page.getByTestId('fork-sign-in').waitFor();
		expect(await page.evaluate(() => document.body.innerText)).not.toContain('Stdin');
		expect(await accessibilityProblems(page)).toEqual([]);
		await screenshot(page, `share-signed-out-${width}`);
	}

	await signIn(page, backend.url, bob, password);
	await page.goto(url);
	await page.getByTestId('fork-run').click();
	await page.waitForURL(`${backend.url}/`);
	await expect.poll(() => page.locator('.cm-content').textContent()).toBe(script.trimEnd());

	await graphql('mutation($id: ID!) { unshareExecution(id: $id) }', { id }, token);
	await page.goto(url);
	await page.getByTestId('shared-missing').waitFor();
});

test('a run still going streams to a signed-out viewer of its link', async () => {
	const token = await register(`carol-share-${stamp}@example.com`);
	const submitted = await graphql<{ submitExecution: { id: string } }>(
		'mutation($input: SubmitExecutionInput!) { submitExecution(input: $input) { id } }',
		{ input: { script: 'print("waiting", flush=True)\nprint("got", input())\n' } },
		token
	);
	const id = submitted.submitExecution.id;
	const shared = await graphql<{ shareExecution: { url: string } }>(
		'mutation($id: ID!) { shareExecution(id: $id) { url } }',
		{ id },
		token
	);
	const viewer = await browser.newContext({ viewport: { width: 390, height: 844 } });
	try {
		const anonymous = await viewer.newPage();
		await anonymous.goto(shared.shareExecution.url);
		await expect.poll(() => outputLines(anonymous)).toEqual(['waiting']);
		await graphql('mutation($id: ID!) { sendInput(id: $id, data: "more\\n", eof: true) }', { id }, token);
		await expect.poll(() => outputLines(anonymous)).toEqual(['waiting', 'got more']);
		await anonymous.waitForSelector('[data-testid="status"][data-status="SUCCEEDED"]');
		await anonymous.getByTestId('shared-exit-code').waitFor();
	} finally {
		await viewer.close();
	}
});
