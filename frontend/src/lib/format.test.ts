import { describe, expect, it, test } from 'vitest';
import { clock, shortId, signalName } from './format';

describe('signalName', () => {
	test.each([
		[24, 'SIGXCPU (24)'],
		[9, 'SIGKILL (9)'],
		[11, 'SIGSEGV (11)'],
		[42, 'signal 42']
	])('%i is %s', (signal, name) => expect(signalName(signal)).toBe(name));
});

describe('shortId', () => {
	test('two runs submitted the same minute get different short ids from the random tail', () => {
		const first = '01a24b2d-7e10-7abc-8def-0123456789ab';
		const second = '01a24b2d-9f02-7123-9456-fedcba987654';
		expect(shortId(first)).toBe('456789ab');
		expect(shortId(second)).toBe('ba987654');
	});
});

describe('clock', () => {
	it('shows minutes and seconds, and hours once there are any', () => {
		expect(clock(0)).toBe('0:00');
		expect(clock(7_900)).toBe('0:07');
		expect(clock(750_000)).toBe('12:30');
		expect(clock(3_723_000)).toBe('1:02:03');
		expect(clock(-5)).toBe('0:00');
	});
});
