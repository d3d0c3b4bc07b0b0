import { describe, expect, it } from 'vitest';
import { parseAnsi, plainStyle, stripAnsi } from './ansi';

describe('parseAnsi', () => {
	it('leaves plain text alone', () => {
		expect(parseAnsi('hello <b>world</b>', plainStyle())).toEqual([
			{ text: 'hello <b>world</b>', classes: '', style: '' }
		]);
	});

	it('maps the 16 colours to palette classes and resets', () => {
		const segments = parseAnsi('\x1b[31mred\x1b[0m plain \x1b[1;94mbright\x1b[39m bold', plainStyle());
		expect(segments).toEqual([
			{ text: 'red', classes: 'ansi-fg-1', style: '' },
			{ text: ' plain ', classes: '', style: '' },
			{ text: 'bright', classes: 'ansi-fg-12 ansi-bold', style: '' },
			{ text: ' bold', classes: 'ansi-bold', style: '' }
		]);
	});

	it('renders 256-colour and true-colour values as rgb() from numbers only', () => {
		expect(parseAnsi('\x1b[38;5;196ma\x1b[48;2;1;2;3mb', plainStyle())).toEqual([
			{ text: 'a', classes: '', style: 'color: rgb(255, 0, 0)' },
			{ text: 'b', classes: '', style: 'color: rgb(255, 0, 0); background-color: rgb(1, 2, 3)' }
		]);
		expect(parseAnsi('\x1b[38;2;999;300;40mx', plainStyle())[0]?.style).toBe('color: rgb(255, 255, 40)');
		expect(parseAnsi('\x1b[38;5;3mx', plainStyle())[0]?.classes).toBe('ansi-fg-3');
		expect(parseAnsi('\x1b[38;5;240mx', plainStyle())[0]?.style).toBe('color: rgb(88, 88, 88)');
	});

	it('carries the colour state over to the next line, as a terminal does', () => {
		const style = plainStyle();
		parseAnsi('\x1b[32mstarts green', style);
		expect(parseAnsi('still green\x1b[0m', style)).toEqual([{ text: 'still green', classes: 'ansi-fg-2', style: '' }]);
		expect(parseAnsi('plain', style)).toEqual([{ text: 'plain', classes: '', style: '' }]);
	});

	it('swaps colours for inverse video', () => {
		expect(parseAnsi('\x1b[7;31mx', plainStyle())[0]?.classes).toBe('ansi-bg-1 ansi-inverse-fg');
	});

	it('drops cursor movement, OSC titles and stray control characters', () => {
		const text = '\x1b[2K\x1b[1Aa\x1b]0;title\x07b\x1b]8;;http://x\x1b\\c\x07\x08d\te';
		expect(parseAnsi(text, plainStyle())).toEqual([
			{ text: 'a', classes: '', style: '' },
			{ text: 'b', classes: '', style: '' },
			{ text: 'cd\te', classes: '', style: '' }
		]);
	});

	it('ignores malformed sequences without throwing', () => {
		expect(parseAnsi('\x1b[38;5mx\x1b[38;5;999my\x1b[', plainStyle()).map((s) => s.text).join('')).toBe('xy');
	});
});

describe('stripAnsi', () => {
	it('keeps only the text', () => {
		expect(stripAnsi('\x1b[1;31merror:\x1b[0m bad\x1b]0;t\x07')).toBe('error: bad');
	});
});
