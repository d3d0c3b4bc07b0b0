import { defineConfig } from 'vitest/config';

// Browser tests: Debian's Chromium through playwright-core against a real API and worker.
export default defineConfig({
	test: {
		include: ['e2e/**/*.e2e.ts'],
		environment: 'node',
		fileParallelism: false,
		testTimeout: 60_000,
		hookTimeout: 120_000,
		// A page answers within a second on a quiet machine, not always on a shared, busy one (a poll ends as
		// soon as it is met, so a long limit costs nothing when all is well).
		expect: { poll: { timeout: 20_000 } }
	}
});
