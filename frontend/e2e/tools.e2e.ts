/**
 * The teacher's journey with tools, in Chromium against a real API and worker: a contributor publishes a
 * script with a three-field form, an admin approves it, a plain user finds it, fills the form, uploads a CSV
 * and sees the output and a figure; a new version goes through review while the old one keeps working.
 * Screenshots in both themes and at 390×844 go to test-results/screenshots; each page shown is checked with
 * axe-core (no serious or critical violation).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { Backend } from './backend';
import { accessibilityProblems, launch, screenshot, setScript } from './browser';

const backend = new Backend();

/** A screenshot of the page as it is, and no serious or critical axe-core violation on it. */
async function looked(page: Page, name: string): Promise<void> {
	await screenshot(page, name);
	expect(await accessibilityProblems(page), name).toEqual([]);
}
let browser: Browser;
const pages: Page[] = [];
const stamp = Date.now();
const password = 'correct horse battery';
const teacher = `teacher-${stamp}@example.com`;
const student = `student-${stamp}@example.com`;
const admin = `admin-tools-${stamp}@example.com`;
const slug = `who-passed-${stamp}`;

const SCRIPT = (version: string) => `import json
import pandas as pd
import matplotlib.pyplot as plt
inputs = json.load(open("/tmp/inputs.json"))
marks = pd.read_csv("/tmp/inputs/" + inputs["marks"])
passed = marks[marks["mark"] >= inputs["threshold"]]
print("${version}", inputs["course"], "passed:", ", ".join(passed["name"]))
marks.plot.bar(x="name", y="mark")
plt.show()
`;
const CSV = 'name,mark\nAda,91\nBert,48\nCleo,75\n';

async function graphql<T>(query: string, variables: Record<string, unknown>, token?: string): Promise<T> {
	const send = () =>
		fetch(`${backend.url}/graphql`, {
			method: 'POST',
			headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
			body: JSON.stringify({ query, variables })
		});
	// A kept-alive socket the server closed meanwhile (creating the admin takes seconds) fails once: send again.
	const response = await send().catch(send);
	const body = (await response.json()) as { data: T; errors?: unknown };
	expect(body.errors).toBeUndefined();
	return body.data;
}

async function signedIn(email: string, colorScheme: 'light' | 'dark' = 'light'): Promise<Page> {
	const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme });
	const page = await context.newPage();
	pages.push(page);
	await page.goto(`${backend.url}/signin`);
	await page.getByLabel('Email').fill(email);
	await page.getByLabel('Password').fill(password);
	await page.locator('form button[type="submit"]').click();
	await page.waitForURL(`${backend.url}/`);
	return page;
}

/** The teacher saves a script (on the scientific runtime) and opens "Publish as tool" for it. */
async function saveAndPublish(page: Page, name: string, script: string): Promise<void> {
	await page.goto(`${backend.url}/`);
	const runtime = page.locator('#runtime');
	const scientific = await runtime.locator('option', { hasText: 'matplotlib' }).last().getAttribute('value');
	await runtime.selectOption(scientific ?? '');
	await setScript(page, script);
	await page.getByText('Saved scripts', { exact: true }).click();
	await page.getByLabel('Name for the saved script').fill(name);
	await page.getByRole('button', { name: 'Save', exact: true }).click();
	await page.getByRole('link', { name: `Publish ${name} as a tool` }).click();
	await page.waitForURL(/\/tools\/publish\?script=/);
}

async function runTool(page: Page, threshold: string): Promise<string[]> {
	await page.getByLabel('Pass mark').fill(threshold);
	await page.getByLabel('Marks (CSV)').setInputFiles({ name: 'marks.csv', mimeType: 'text/csv', buffer: Buffer.from(CSV) });
	const before = await page.getByTestId('tool-run').getAttribute('data-run');
	await page.getByRole('button', { name: 'Run' }).click();
	await page.waitForFunction(
		(previous) => {
			const run = document.querySelector('[data-testid="tool-run"]');
			const status = run?.querySelector('[data-testid="status"]')?.getAttribute('data-status');
			return run?.getAttribute('data-run') !== previous && status === 'SUCCEEDED';
		},
		before,
		{ timeout: 60_000 }
	);
	await page.getByTestId('artifact-image').first().waitFor({ timeout: 20_000 });
	return page.locator('[data-testid="output"] [data-testid="line-text"]').allTextContents();
}

beforeAll(async () => {
	await backend.start();
	browser = await launch();
	backend.createAdmin(admin, password);
	const signUp = 'mutation($e: String!, $p: String!) { register(email: $e, password: $p) { user { id } } }';
	const signUps = await Promise.all([teacher, student].map((e) => graphql<{ register: { user: { id: string } } }>(signUp, { e, p: password })));
	const signIn = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }';
	const { login } = await graphql<{ login: { accessToken: string } }>(signIn, { e: admin, p: password });
	const promote = 'mutation($id: ID!) { setUserRole(id: $id, role: CONTRIBUTOR) { role } }';
	await graphql(promote, { id: signUps[0]!.register.user.id }, login.accessToken);
});

afterEach(async ({ task }) => {
	if (task.result?.state === 'fail') for (const [n, page] of pages.entries()) await screenshot(page, `failed-tools-${n}`);
});

afterAll(async () => {
	await browser?.close();
	await backend.stop();
});

describe('tools', () => {
	let teacherPage: Page;
	let adminPage: Page;
	let studentPage: Page;

	test('a contributor publishes a script with a three-field form, previewed as users will see it', async () => {
		teacherPage = await signedIn(teacher);
		const page = teacherPage;
		await saveAndPublish(page, 'grades', SCRIPT('v1'));
		await page.getByLabel('Slug (its address: /tools/slug)').fill(slug);
		await page.getByLabel('Title').fill('Who passed');
		await page.getByLabel('Description').fill('Upload the marks as a CSV; see who reached the pass mark.');
		const fields: [string, string, string][] = [
			['threshold', 'Pass mark', 'NUMBER'],
			['course', 'Course', 'CHOICE'],
			['marks', 'Marks (CSV)', 'FILE']
		];
		for (const [index, [name, label, kind]] of fields.entries()) {
			await page.getByRole('button', { name: 'Add a field' }).click();
			const field = page.getByTestId('builder-field').nth(index);
			await field.getByLabel('Name (in inputs.json)').fill(name);
			await field.getByLabel('Label').fill(label);
			await field.getByLabel('Kind').selectOption(kind);
		}
		const [threshold, course, marks] = [0, 1, 2].map((n) => page.getByTestId('builder-field').nth(n));
		await threshold!.getByLabel('Minimum').fill('0');
		await threshold!.getByLabel('Maximum').fill('100');
		await threshold!.getByLabel('Required').check();
		await course!.getByLabel('Choices (one a line)').fill('maths\nphysics');
		await course!.getByLabel('Default').fill('maths');
		await marks!.getByLabel('Types (.csv, .txt)').fill('.csv');
		await marks!.getByLabel('Required').check();
		// Ordering: move the file field up and back down again.
		await page.getByRole('button', { name: 'Move marks up' }).click();
		await expect.poll(() => page.getByTestId('tool-field').evaluateAll((els) => els.map((e) => e.getAttribute('data-field')))).toEqual(['threshold', 'marks', 'course']);
		await page.getByRole('button', { name: 'Move marks down' }).click();
		await expect.poll(() => page.getByTestId('tool-field').evaluateAll((els) => els.map((e) => e.getAttribute('data-field')))).toEqual(['threshold', 'course', 'marks']);
		await looked(page, 'tool-publish-light');
		await page.getByRole('button', { name: 'Publish for review' }).click();
		await page.waitForURL(`${backend.url}/tools/${slug}`);
		await expect.poll(() => page.getByTestId('version-status').textContent()).toBe('pending');
	});

	test('an admin approves it from the review queue', async () => {
		adminPage = await signedIn(admin);
		await adminPage.goto(`${backend.url}/tools/review`);
		const pending = adminPage.getByTestId('pending-version').filter({ hasText: slug });
		await pending.waitFor();
		await looked(adminPage, 'tool-review-new-light');
		await pending.getByRole('button', { name: 'Approve' }).click();
		await expect.poll(() => adminPage.getByTestId('pending-version').filter({ hasText: slug }).count()).toBe(0);
	});

	test('a plain user finds it, fills the form (checked as they type), uploads a CSV and sees the output and a figure', async () => {
		studentPage = await signedIn(student);
		const page = studentPage;
		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tools' }).click();
		await page.getByLabel('Search tools').fill('pass mark');
		await page.getByTestId('tool-card').filter({ hasText: 'Who passed' }).getByRole('link', { name: 'Who passed' }).click();
		await page.waitForURL(`${backend.url}/tools/${slug}`);
		await page.getByLabel('Pass mark').fill('abc');
		await expect.poll(() => page.getByTestId('tool-field').filter({ hasText: 'Pass mark' }).getByTestId('field-error').textContent()).toBe('must be a number');
		await page.getByLabel('Pass mark').fill('150');
		await expect.poll(() => page.getByTestId('tool-field').filter({ hasText: 'Pass mark' }).getByTestId('field-error').textContent()).toBe('must be at most 100');
		expect(await page.getByTestId('tool-source').count()).toBe(0);
		expect(await runTool(page, '60')).toEqual(['v1 maths passed: Ada, Cleo']);
		const runId = await page.getByTestId('tool-run').getAttribute('data-run');
		await looked(page, 'tool-run-light');
		await page.emulateMedia({ colorScheme: 'dark' });
		await looked(page, 'tool-run-dark');
		await page.setViewportSize({ width: 390, height: 844 });
		await looked(page, 'tool-run-phone-dark');
		await page.emulateMedia({ colorScheme: 'light' });
		await looked(page, 'tool-run-phone-light');
		await page.goto(`${backend.url}/tools`);
		await page.getByTestId('tool-card').first().waitFor();
		await looked(page, 'tools-catalog-phone-light');
		await page.setViewportSize({ width: 1280, height: 900 });
		await looked(page, 'tools-catalog-light');
		// The run in its own page: run again through the form; the script its author keeps hidden is not shown.
		await page.goto(`${backend.url}/runs/${runId}`);
		await page.getByTestId('run-script-hidden').waitFor();
		expect(await page.getByTestId('run-script').count()).toBe(0);
		expect(await page.getByRole('button', { name: 'Open in editor' }).count()).toBe(0);
		expect(await page.getByTestId('run-tool-again').getAttribute('href')).toBe(`/tools/${slug}`);
		await looked(page, 'tool-run-page-light');
	});

	test('a new version goes through review while the old one keeps working', async () => {
		await saveAndPublish(teacherPage, 'grades v2', SCRIPT('v2'));
		await teacherPage.getByLabel('A new version of').selectOption(slug);
		await expect.poll(() => teacherPage.getByTestId('builder-field').count()).toBe(3);
		await teacherPage.getByRole('button', { name: 'Publish for review' }).click();
		await teacherPage.waitForURL(`${backend.url}/tools/${slug}`);

		await studentPage.goto(`${backend.url}/tools/${slug}`);
		expect(await runTool(studentPage, '50')).toEqual(['v1 maths passed: Ada, Cleo']);

		await adminPage.goto(`${backend.url}/tools/review`);
		const pending = adminPage.getByTestId('pending-version').filter({ hasText: slug });
		await pending.waitFor();
		await expect.poll(() => pending.locator('[data-change="added"]').allTextContents()).toContain('+ print("v2", inputs["course"], "passed:", ", ".join(passed["name"]))');
		await looked(adminPage, 'tool-review-diff-light');
		await adminPage.emulateMedia({ colorScheme: 'dark' });
		await looked(adminPage, 'tool-review-diff-dark');
		await pending.getByRole('button', { name: 'Approve' }).click();
		await expect.poll(() => adminPage.getByTestId('pending-version').filter({ hasText: slug }).count()).toBe(0);

		await studentPage.goto(`${backend.url}/tools/${slug}`);
		expect(await runTool(studentPage, '50')).toEqual(['v2 maths passed: Ada, Cleo']);
		await studentPage.getByLabel('Version').selectOption('1');
		expect(await runTool(studentPage, '80')).toEqual(['v1 maths passed: Ada']);
	});
});
