/**
 * A real Podrun for the browser tests, like backend/tests/e2e/conftest.py: a fresh database
 * (podrun_web_test), its own Redis database and key prefix, then the API (serving the built web
 * client) and a worker as child processes.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, openSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const PYTHON = resolve(ROOT, 'backend/.venv/bin/python');
export const RESULTS = resolve(ROOT, 'frontend/test-results');

const ENV = {
	...process.env,
	PODRUN_DATABASE_URL:
		process.env.PODRUN_WEB_TEST_DATABASE_URL ?? 'postgresql+asyncpg://postgres@127.0.0.1:5432/podrun_web_test',
	PODRUN_REDIS_URL: process.env.PODRUN_WEB_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/12',
	PODRUN_REDIS_PREFIX: 'podrun-web-test',
	PODRUN_JWT_SECRET: 'web-test-secret-' + 'x'.repeat(40),
	PODRUN_MODE: 'development',
	PODRUN_WEB_DIR: resolve(ROOT, 'frontend/build'),
	PODRUN_WORKER__SHUTDOWN_GRACE_S: '5'
};


async function freePort(): Promise<number> {
	return new Promise((done, fail) => {
		const server = createServer();
		server.once('error', fail);
		server.listen(0, '127.0.0.1', () => {
			const address = server.address();
			server.close(() => done(typeof address === 'object' && address ? address.port : 0));
		});
	});
}

function start(name: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
	mkdirSync(RESULTS, { recursive: true });
	const log = openSync(resolve(RESULTS, `${name}.log`), 'a');
	return spawn(PYTHON, ['-m', 'podrun.cli', ...args], { env, cwd: resolve(ROOT, 'backend'), stdio: ['ignore', log, log] });
}

function stop(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
	return new Promise((done) => {
		const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
		child.once('exit', () => {
			clearTimeout(timer);
			done();
		});
		child.kill('SIGTERM');
	});
}

export class Backend {
	api: ChildProcess | null = null;
	worker: ChildProcess | null = null;
	port = 0;

	/** Settings of this test file's API and worker on top of the common ones (PODRUN_… variables). */
	constructor(private readonly settings: Record<string, string> = {}) {}

	get env(): NodeJS.ProcessEnv {
		return { ...ENV, ...this.settings };
	}

	get url(): string {
		return `http://127.0.0.1:${this.port}`;
	}

	async start(): Promise<void> {
		// A fresh, migrated podrun_web_test and no keys under the prefix (backend/tests/databases.py).
		execFileSync(PYTHON, ['-m', 'tests.databases'], { env: this.env, cwd: resolve(ROOT, 'backend'), stdio: 'inherit' });
		this.port = await freePort();
		this.worker = start('worker', ['worker'], this.env);
		await this.startApi();
	}

	async startApi(): Promise<void> {
		this.api = start('api', ['api', '--port', String(this.port)], this.env);
		const deadline = Date.now() + 60_000;
		while (Date.now() < deadline) {
			if (this.api.exitCode !== null) throw new Error(`API exited early; see ${RESULTS}/api.log`);
			try {
				if ((await fetch(`${this.url}/readyz`)).ok) return;
			} catch {
				// not listening yet
			}
			await new Promise((r) => setTimeout(r, 200));
		}
		throw new Error(`API not ready after 60 s; see ${RESULTS}/api.log`);
	}

	/** Make an administrator the way an operator does (`podrun create-user --admin`). */
	createAdmin(email: string, password: string): void {
		execFileSync(PYTHON, ['-m', 'podrun.cli', 'create-user', '--email', email, '--password', password, '--admin'], {
			env: this.env,
			cwd: resolve(ROOT, 'backend'),
			stdio: 'ignore'
		});
	}

	/** Stop the worker (runs stay queued) while the API keeps answering. */
	async stopWorker(): Promise<void> {
		if (this.worker) await stop(this.worker);
	}

	startWorker(): void {
		this.worker = start('worker', ['worker'], this.env);
	}

	/** Stop the API (every WebSocket drops) while the worker keeps running. */
	async stopApi(): Promise<void> {
		if (this.api) await stop(this.api);
	}

	async stop(): Promise<void> {
		await Promise.all([this.api && stop(this.api), this.worker && stop(this.worker)]);
	}
}
