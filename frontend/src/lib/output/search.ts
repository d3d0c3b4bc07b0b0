/**
 * Finding text in the output. The view is virtualised, so the browser's find sees only the rows on
 * screen: the search runs over the buffer's lines instead, and the view scrolls to each match.
 * Matching ignores case and ANSI escapes (it reads the segments, which hold the text as shown).
 */
import type { Segment } from './ansi';
import type { DisplayLine } from './buffer';

/** The text a line shows (an artifact's line shows its file name). */
export function shownText(line: DisplayLine): string {
	if (line.artifact) return line.artifact.name;
	return line.segments.map((segment) => segment.text).join('');
}

/** The indexes of the lines that contain `query` (any case), in order; none for an empty query. */
export function matchingLines(lines: readonly DisplayLine[], query: string): number[] {
	const needle = query.toLowerCase();
	if (!needle) return [];
	const found: number[] = [];
	for (let i = 0; i < lines.length; i++) if (shownText(lines[i]!).toLowerCase().includes(needle)) found.push(i);
	return found;
}

export interface MarkedSegment extends Segment {
	/** Part of a match of the query. */
	mark: boolean;
}

/** `segments` split where `query` matches (any case), so each match can be drawn highlighted. */
export function markSegments(segments: readonly Segment[], query: string): MarkedSegment[] {
	const text = segments.map((segment) => segment.text).join('');
	const needle = query.toLowerCase();
	if (!needle) return segments.map((segment) => ({ ...segment, mark: false }));
	// Character ranges of the matches, then each segment cut at their edges.
	const ranges: [number, number][] = [];
	const haystack = text.toLowerCase();
	for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) {
		ranges.push([at, at + needle.length]);
	}
	const marked: MarkedSegment[] = [];
	let start = 0;
	for (const segment of segments) {
		const end = start + segment.text.length;
		const cuts = new Set([start, end]);
		for (const [from, to] of ranges) {
			if (from > start && from < end) cuts.add(from);
			if (to > start && to < end) cuts.add(to);
		}
		const edges = [...cuts].sort((a, b) => a - b);
		for (let i = 0; i + 1 < edges.length; i++) {
			const [from, to] = [edges[i]!, edges[i + 1]!];
			const inside = ranges.some(([a, b]) => from >= a && to <= b);
			marked.push({ ...segment, text: text.slice(from, to), mark: inside });
		}
		start = end;
	}
	return marked;
}

/** How many rows a line takes when long lines wrap at `columns` characters (monospace: characters measure the width). */
export function wrappedRows(line: DisplayLine, rowsOf: (line: DisplayLine) => number, columns: number): number {
	if (line.artifact) return rowsOf(line);
	const length = line.segments.reduce((sum, segment) => sum + segment.text.length, 0);
	return Math.max(1, Math.ceil(length / Math.max(1, columns)));
}
