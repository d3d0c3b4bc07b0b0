import { render } from '@testing-library/svelte';
import { beforeAll, describe, expect, it } from 'vitest';
import { OutputBuffer, type ExecutionEvent } from '$lib/output/buffer';
import OutputView from './OutputView.svelte';

beforeAll(() => {
	globalThis.ResizeObserver ??= class {
		observe() {}
		unobserve() {}
		disconnect() {}
	};
});

function bufferWith(...texts: [string, 'STDOUT' | 'STDERR'][]): OutputBuffer {
	const buffer = new OutputBuffer();
	const event: ExecutionEvent = {
		__typename: 'OutputChunk',
		lines: texts.map(([text, stream], i) => ({ seq: i + 1, stream, text, partial: false }))
	};
	buffer.apply(event);
	return buffer;
}

describe('OutputView', () => {
	it('renders output as text: markup in output is never interpreted', () => {
		const buffer = bufferWith(['<img src=x onerror="alert(1)"><script>alert(2)</script>', 'STDOUT'], ['\x1b[31m<b>red</b>', 'STDERR']);
		const { container } = render(OutputView, { lines: buffer.lines, version: 1 });
		expect(container.querySelector('img')).toBeNull();
		expect(container.querySelector('script')).toBeNull();
		expect(container.querySelector('b')).toBeNull();
		const texts = [...container.querySelectorAll('[data-testid="line-text"]')].map((e) => e.textContent);
		expect(texts).toEqual(['<img src=x onerror="alert(1)"><script>alert(2)</script>', '<b>red</b>']);
		expect(container.querySelector('.ansi-fg-1')?.textContent).toBe('<b>red</b>');
	});

	it('marks stderr lines and numbers every line', () => {
		const buffer = bufferWith(['out', 'STDOUT'], ['err', 'STDERR']);
		const { container } = render(OutputView, { lines: buffer.lines, version: 1 });
		const rows = [...container.querySelectorAll('[data-line]')];
		expect(rows.map((r) => [r.getAttribute('data-line'), r.getAttribute('data-stream')])).toEqual([
			['1', 'stdout'],
			['2', 'stderr']
		]);
		expect(rows[0]?.textContent).toContain('1');
	});

	it('renders only a window of 100,000 lines', () => {
		const buffer = new OutputBuffer();
		buffer.apply({
			__typename: 'OutputChunk',
			lines: Array.from({ length: 100_000 }, (_, i) => ({ seq: i + 1, stream: 'STDOUT' as const, text: `line ${i}`, partial: false }))
		});
		const { container } = render(OutputView, { lines: buffer.lines, version: 1 });
		const output = container.querySelector('[data-testid="output"]');
		expect(output?.getAttribute('data-lines')).toBe('100000');
		expect(container.querySelectorAll('[data-line]').length).toBeLessThan(200);
	});

	it('updates a line when a partial line is continued', async () => {
		const buffer = new OutputBuffer();
		buffer.apply({ __typename: 'OutputChunk', lines: [{ seq: 1, stream: 'STDOUT', text: 'Name: ', partial: true }] });
		const view = render(OutputView, { lines: buffer.lines, version: 1 });
		buffer.echo('Ada');
		buffer.apply({ __typename: 'OutputChunk', lines: [{ seq: 2, stream: 'STDOUT', text: 'Hello, Ada!', partial: false }] });
		await view.rerender({ lines: buffer.lines, version: 2 });
		const texts = [...view.container.querySelectorAll('[data-testid="line-text"]')].map((e) => e.textContent);
		expect(texts).toEqual(['Name: Ada', 'Hello, Ada!']);
	});

	it('says when there is no output yet', () => {
		const { getByText } = render(OutputView, { lines: [], version: 0 });
		expect(getByText('No output yet.')).toBeTruthy();
	});

	it('shows a non-image artifact as a download chip in its place, without fetching it', () => {
		const buffer = bufferWith(['before', 'STDOUT']);
		buffer.apply({
			__typename: 'ArtifactCreated',
			seq: 2,
			artifact: { id: 'a1', name: 'table.csv', mediaType: 'text/csv', sizeBytes: 2048, url: '/artifacts/a1' }
		});
		const { container } = render(OutputView, { lines: buffer.lines, tops: buffer.tops, version: 2 });
		const rows = [...container.querySelectorAll('[data-line]')];
		expect(rows.map((row) => row.getAttribute('data-line'))).toEqual(['1', '2']);
		expect(rows[1]?.querySelector('[data-testid="artifact-download"]')?.textContent).toContain('table.csv');
		expect(container.querySelector('img')).toBeNull();
	});
});
