import { describe, expect, it } from 'vitest';
import type { ExecutionSummaryFragment } from '$lib/gql/graphql';
import { IMAGE_ROWS, OutputBuffer, type ExecutionEvent, type Stream } from './buffer';

let nextSeq = 1;
function lines(...items: [Stream, string, boolean?][]): ExecutionEvent {
	return {
		__typename: 'OutputChunk',
		lines: items.map(([stream, text, partial = false]) => ({ seq: nextSeq++, stream, text, partial }))
	};
}

export function status(seq: number, value: ExecutionSummaryFragment['status']): ExecutionEvent {
	return {
		__typename: 'StatusChange',
		seq,
		status: value,
		execution: { id: 'e1', status: value } as ExecutionSummaryFragment
	};
}

const texts = (buffer: OutputBuffer) => buffer.lines.map((line) => `${line.stream}:${line.text}`);

describe('OutputBuffer', () => {
	it('appends lines in seq order and tracks the last seq and status', () => {
		nextSeq = 2;
		const buffer = new OutputBuffer();
		expect(buffer.apply(status(1, 'RUNNING'))).toBe(true);
		buffer.apply(lines(['STDOUT', 'one'], ['STDERR', 'oops'], ['STDOUT', 'two']));
		expect(texts(buffer)).toEqual(['STDOUT:one', 'STDERR:oops', 'STDOUT:two']);
		expect(buffer.lastSeq).toBe(4);
		expect(buffer.terminal).toBe(false);
		buffer.apply(status(5, 'SUCCEEDED'));
		expect(buffer.terminal).toBe(true);
		expect(buffer.execution?.status).toBe('SUCCEEDED');
	});

	it('ignores events it already has, so an overlapping replay shows nothing twice', () => {
		nextSeq = 1;
		const buffer = new OutputBuffer();
		const first = lines(['STDOUT', 'a'], ['STDOUT', 'b']);
		buffer.apply(first);
		expect(buffer.apply(first)).toBe(false);
		nextSeq = 2;
		buffer.apply(lines(['STDOUT', 'b'], ['STDOUT', 'c']));
		expect(buffer.apply(status(1, 'RUNNING'))).toBe(false);
		expect(texts(buffer)).toEqual(['STDOUT:a', 'STDOUT:b', 'STDOUT:c']);
		expect(buffer.lastSeq).toBe(3);
	});

	it('joins a partial line with the next line of the same stream, like a terminal', () => {
		nextSeq = 1;
		const buffer = new OutputBuffer();
		buffer.apply(lines(['STDOUT', 'Name: ', true]));
		const prompt = buffer.lines[0];
		buffer.apply(lines(['STDERR', 'a warning'], ['STDOUT', 'Ann'], ['STDOUT', 'next']));
		expect(texts(buffer)).toEqual(['STDOUT:Name: Ann', 'STDERR:a warning', 'STDOUT:next']);
		// Replaced, not mutated: renderers compare lines by identity.
		expect(buffer.lines[0]).not.toBe(prompt);
		expect(prompt?.text).toBe('Name: ');
	});

	it('joins the pieces of a long line split by the server', () => {
		nextSeq = 1;
		const buffer = new OutputBuffer();
		buffer.apply(lines(['STDOUT', 'x'.repeat(3), true], ['STDOUT', 'y'.repeat(3), true], ['STDOUT', 'z']));
		expect(texts(buffer)).toEqual(['STDOUT:xxxyyyz']);
	});

	it('keeps colours across a partial join and across lines', () => {
		nextSeq = 1;
		const buffer = new OutputBuffer();
		buffer.apply(lines(['STDOUT', '\x1b[31mred ', true], ['STDOUT', 'still\x1b[0m'], ['STDOUT', 'plain']));
		expect(buffer.lines[0]?.segments).toEqual([{ text: 'red still', classes: 'ansi-fg-1', style: '' }]);
		expect(buffer.lines[1]?.segments).toEqual([{ text: 'plain', classes: '', style: '' }]);
	});

	it('echoes typed input after the prompt and ends that line', () => {
		nextSeq = 1;
		const buffer = new OutputBuffer();
		buffer.apply(lines(['STDOUT', 'Name: ', true]));
		buffer.echo('Ann');
		buffer.apply(lines(['STDOUT', 'Hello, Ann!']));
		expect(texts(buffer)).toEqual(['STDOUT:Name: Ann', 'STDOUT:Hello, Ann!']);
		expect(buffer.lines[0]?.segments.at(-1)).toEqual({ text: 'Ann', classes: 'input-echo', style: '' });
		expect(buffer.lastSeq).toBe(2);
	});

	it('gives plain text for copy and download', () => {
		nextSeq = 1;
		const buffer = new OutputBuffer();
		expect(buffer.text()).toBe('');
		buffer.apply(lines(['STDOUT', '\x1b[32mok\x1b[0m'], ['STDERR', 'err']));
		expect(buffer.text()).toBe('ok\nerr\n');
	});

	it('holds 100,000 lines', () => {
		nextSeq = 1;
		const buffer = new OutputBuffer();
		for (let chunk = 0; chunk < 100; chunk++) {
			buffer.apply(lines(...Array.from({ length: 1000 }, (_, i): [Stream, string] => ['STDOUT', `line ${chunk * 1000 + i}`])));
		}
		expect(buffer.lines.length).toBe(100_000);
		expect(buffer.lines[99_999]?.text).toBe('line 99999');
		expect(buffer.lastSeq).toBe(100_000);
	});
});

describe('OutputBuffer artifacts', () => {
	const figure = { id: 'a1', name: 'figure-1.png', mediaType: 'image/png', sizeBytes: 1234, url: '/artifacts/a1' };
	const table = { id: 'a2', name: 'table.csv', mediaType: 'text/csv', sizeBytes: 10, url: '/artifacts/a2' };

	it('places an artifact where it was produced; what follows starts below it', () => {
		nextSeq = 1;
		const buffer = new OutputBuffer();
		buffer.apply(lines(['STDOUT', 'loading ', true]));
		expect(buffer.apply({ __typename: 'ArtifactCreated', seq: nextSeq++, artifact: figure })).toBe(true);
		buffer.apply(lines(['STDOUT', 'done']));
		expect(texts(buffer)).toEqual(['STDOUT:loading ', 'STDOUT:[figure-1.png]', 'STDOUT:done']);
		expect(buffer.lines[1]?.artifact).toEqual(figure);
		expect(buffer.lastSeq).toBe(3);
	});

	it('gives an image IMAGE_ROWS rows and other artifacts one, and ignores a replayed one', () => {
		nextSeq = 1;
		const buffer = new OutputBuffer();
		buffer.apply(lines(['STDOUT', 'one']));
		buffer.apply({ __typename: 'ArtifactCreated', seq: nextSeq++, artifact: figure });
		buffer.apply({ __typename: 'ArtifactCreated', seq: nextSeq++, artifact: table });
		buffer.apply(lines(['STDOUT', 'two']));
		expect(buffer.tops).toEqual([0, 1, 1 + IMAGE_ROWS, 2 + IMAGE_ROWS]);
		expect(buffer.rows).toBe(3 + IMAGE_ROWS);
		expect(buffer.apply({ __typename: 'ArtifactCreated', seq: 2, artifact: figure })).toBe(false);
		expect(buffer.lines).toHaveLength(4);
	});
});
