/**
 * A small ANSI SGR parser: turns terminal colour codes into styled segments. Output is rendered as
 * text nodes, never as HTML, so nothing a script prints can inject markup; colours become class
 * names from a fixed palette or rgb() built from numbers only. Other escape sequences are dropped.
 */

export interface Style {
	fg: number | string | null;
	bg: number | string | null;
	bold: boolean;
	dim: boolean;
	italic: boolean;
	underline: boolean;
	inverse: boolean;
}

export interface Segment {
	text: string;
	/** Space-separated class names (palette colours and attributes), or '' for plain text. */
	classes: string;
	/** Inline CSS for 256-colour and true-colour values, or ''. */
	style: string;
}

export const plainStyle = (): Style => ({
	fg: null,
	bg: null,
	bold: false,
	dim: false,
	italic: false,
	underline: false,
	inverse: false
});

// CSI ... final byte, OSC ... BEL/ST, and lone two-character escapes.
// eslint-disable-next-line no-control-regex
const ESCAPE = /\x1b\[([0-?]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** The text without any escape sequences (for copy and download). */
export function stripAnsi(text: string): string {
	return text.replace(ESCAPE, '').replace(CONTROL, '');
}

function cube(n: number): string {
	if (n < 16) return '';
	if (n >= 232) {
		const v = 8 + (n - 232) * 10;
		return `rgb(${v}, ${v}, ${v})`;
	}
	const i = n - 16;
	const level = (x: number) => (x === 0 ? 0 : 55 + x * 40);
	return `rgb(${level(Math.floor(i / 36))}, ${level(Math.floor(i / 6) % 6)}, ${level(i % 6)})`;
}

function extendedColour(codes: number[], i: number): [number | string | null, number] {
	const mode = codes[i + 1];
	if (mode === 5) {
		const n = codes[i + 2];
		if (n === undefined || n < 0 || n > 255) return [null, i + 2];
		return [n < 16 ? n : cube(n), i + 2];
	}
	if (mode === 2) {
		const [r, g, b] = [codes[i + 2], codes[i + 3], codes[i + 4]].map((v) =>
			Math.min(255, Math.max(0, Math.trunc(v ?? 0)))
		);
		return [`rgb(${r}, ${g}, ${b})`, i + 4];
	}
	return [null, i];
}

/** Apply one SGR parameter list (the part between ESC[ and m) to `style`. */
export function applySgr(style: Style, params: string): void {
	const codes = params === '' ? [0] : params.split(/[;:]/).map((p) => (p === '' ? 0 : Number(p)));
	for (let i = 0; i < codes.length; i++) {
		const code = codes[i] ?? 0;
		if (code === 0) Object.assign(style, plainStyle());
		else if (code === 1) style.bold = true;
		else if (code === 2) style.dim = true;
		else if (code === 3) style.italic = true;
		else if (code === 4) style.underline = true;
		else if (code === 7) style.inverse = true;
		else if (code === 22) style.bold = style.dim = false;
		else if (code === 23) style.italic = false;
		else if (code === 24) style.underline = false;
		else if (code === 27) style.inverse = false;
		else if (code >= 30 && code <= 37) style.fg = code - 30;
		else if (code >= 90 && code <= 97) style.fg = code - 90 + 8;
		else if (code === 39) style.fg = null;
		else if (code >= 40 && code <= 47) style.bg = code - 40;
		else if (code >= 100 && code <= 107) style.bg = code - 100 + 8;
		else if (code === 49) style.bg = null;
		else if (code === 38 || code === 48) {
			const [colour, next] = extendedColour(codes, i);
			if (code === 38) style.fg = colour;
			else style.bg = colour;
			i = next;
		}
	}
}

function render(style: Style, text: string): Segment {
	const classes: string[] = [];
	const css: string[] = [];
	const [fg, bg] = style.inverse ? [style.bg, style.fg] : [style.fg, style.bg];
	if (typeof fg === 'number') classes.push(`ansi-fg-${fg}`);
	else if (typeof fg === 'string') css.push(`color: ${fg}`);
	if (typeof bg === 'number') classes.push(`ansi-bg-${bg}`);
	else if (typeof bg === 'string') css.push(`background-color: ${bg}`);
	if (style.inverse && fg === null) classes.push('ansi-inverse-fg');
	if (style.inverse && bg === null) classes.push('ansi-inverse-bg');
	if (style.bold) classes.push('ansi-bold');
	if (style.dim) classes.push('ansi-dim');
	if (style.italic) classes.push('ansi-italic');
	if (style.underline) classes.push('ansi-underline');
	return { text, classes: classes.join(' '), style: css.join('; ') };
}

/**
 * Split `text` into styled segments, starting from `style` (which is updated, so the state carries
 * over to the next line of the same stream, as in a terminal).
 */
export function parseAnsi(text: string, style: Style): Segment[] {
	const segments: Segment[] = [];
	let last = 0;
	const push = (chunk: string) => {
		const clean = chunk.replace(CONTROL, '');
		if (clean) segments.push(render(style, clean));
	};
	for (const match of text.matchAll(ESCAPE)) {
		push(text.slice(last, match.index));
		if (match[2] === 'm') applySgr(style, match[1] ?? '');
		last = match.index + match[0].length;
	}
	push(text.slice(last));
	return segments;
}
