import { describe, expect, test } from 'vitest';
import type { ExecutionSummaryFragment } from '$lib/gql/graphql';
import { advance, cellsFrom, cellStatusHint, countdown, endedMessage, kernelEnded, newCell } from './kernels';

describe('countdown', () => {
	const now = Date.parse('2026-12-06T18:00:00Z');
	test.each([
		['2026-12-06T18:05:00Z', '5:00'],
		['2026-12-06T18:04:59.200Z', '5:00'],
		['2026-12-06T18:00:00.500Z', '0:01'],
		['2026-12-06T18:00:00Z', '0:00'],
		['2026-12-06T17:59:00Z', '0:00'],
		['2026-12-06T19:30:00Z', '1:30:00']
	])('stopping at %s shows %s', (stopsAt, shown) => expect(countdown(stopsAt, now)).toBe(shown));

	test.each([null, undefined, '', 'not a date'])('no planned stop (%s) shows nothing', (stopsAt) =>
		expect(countdown(stopsAt, now)).toBeNull()
	);
});

test.each([
	['STARTING', false],
	['IDLE', false],
	['BUSY', false],
	['STOPPED', true],
	['DEAD', true]
] as const)('a %s kernel has ended: %s', (status, ended) => expect(kernelEnded(status)).toBe(ended));

test('a queued cell says it waits for the one before it; a running one needs no hint', () => {
	expect(cellStatusHint('QUEUED')).toBe('Waiting for the cell before it');
	expect(cellStatusHint('CANCELLED')).toContain('kept its state');
	expect(cellStatusHint('RUNNING')).toBeNull();
	expect(cellStatusHint('SUCCEEDED')).toBeNull();
});

const run = (id: string, script: string) => ({ id, script }) as ExecutionSummaryFragment;

describe('cellsFrom', () => {
	test("a live kernel's cells in the server's order, then an empty one to type in", () => {
		const cells = cellsFrom([run('a', 'x = 41'), run('b', 'print(x + 1)')], true);
		expect(cells.map((cell) => [cell.key, cell.code, cell.run?.id ?? null])).toEqual([
			['a', 'x = 41', 'a'],
			['b', 'print(x + 1)', 'b'],
			[cells[2]!.key, '', null]
		]);
	});

	test('an ended kernel gets no empty cell', () => {
		expect(cellsFrom([run('a', 'x = 41')], false)).toHaveLength(1);
	});
});

describe('advance', () => {
	test('Shift+Enter on the last cell adds an empty one below and moves to it', () => {
		const cells = [newCell('x = 41')];
		const next = advance(cells, 0);
		expect(next.focus).toBe(1);
		expect(next.cells).toHaveLength(2);
		expect(next.cells[1]!.code).toBe('');
		expect(next.cells[1]!.key).not.toBe(cells[0]!.key);
	});

	test('Shift+Enter on a cell with one below moves to it and adds nothing', () => {
		const cells = [newCell('a = 1'), newCell('b = 2')];
		const next = advance(cells, 0);
		expect(next).toEqual({ cells, focus: 1 });
	});
});

describe('endedMessage', () => {
	const rest = 'Its cells stay here but can no longer run; start a new kernel to go on.';
	test.each([
		['STOPPED', 'stopped after 600 s without a cell', `This kernel has stopped. Stopped after 600 s without a cell. ${rest}`],
		['DEAD', 'The sandbox ended unexpectedly.', `This kernel has died. The sandbox ended unexpectedly. ${rest}`],
		['DEAD', '  out of memory ', `This kernel has died. Out of memory. ${rest}`],
		['STOPPED', null, `This kernel has stopped. ${rest}`],
		['DEAD', '', `This kernel has died. ${rest}`]
	] as const)('%s with %j', (status, error, message) => expect(endedMessage(status, error)).toBe(message));
});
