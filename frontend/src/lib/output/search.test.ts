import { describe, expect, it } from 'vitest';
import { OutputBuffer, rowsOf, type ExecutionEvent } from './buffer';
import { markSegments, matchingLines, wrappedRows } from './search';
import { parseAnsi, plainStyle } from './ansi';

function linesOf(...texts: string[]) {
	const buffer = new OutputBuffer();
	const event: ExecutionEvent = {
		__typename: 'OutputChunk',
		lines: texts.map((text, i) => ({ seq: i + 1, stream: 'STDOUT', text, partial: false }))
	};
	buffer.apply(event);
	return buffer.lines;
}

describe('output search', () => {
	it('finds lines by their shown text, any case, never by escape codes', () => {
		const lines = linesOf('alpha', '\x1b[31mBeta\x1b[0m', 'gamma beta', '[31m');
		expect(matchingLines(lines, 'BETA')).toEqual([1, 2]);
		expect(matchingLines(lines, '31m')).toEqual([3]);
		expect(matchingLines(lines, '')).toEqual([]);
	});

	it('cuts segments at the edges of every match, keeping their colours', () => {
		const segments = parseAnsi('ab\x1b[31mcAB\x1b[0mab', plainStyle());
		const marked = markSegments(segments, 'ab');
		expect(marked.map((s) => [s.text, s.mark, s.classes !== ''])).toEqual([
			['ab', true, false],
			['c', false, true],
			['AB', true, true],
			['ab', true, false]
		]);
		expect(marked.map((s) => s.text).join('')).toBe('abcABab');
	});

	it('marks a match that spans two segments in both', () => {
		const segments = parseAnsi('xa\x1b[1mbx', plainStyle());
		expect(markSegments(segments, 'ab').map((s) => [s.text, s.mark])).toEqual([
			['x', false],
			['a', true],
			['b', true],
			['x', false]
		]);
	});

	it('counts the rows a wrapped line takes', () => {
		const [short, long] = linesOf('x'.repeat(10), 'y'.repeat(250));
		expect(wrappedRows(short!, rowsOf, 80)).toBe(1);
		expect(wrappedRows(long!, rowsOf, 80)).toBe(4);
		expect(wrappedRows(linesOf('')[0]!, rowsOf, 80)).toBe(1);
	});
});
