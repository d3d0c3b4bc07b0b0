/**
 * The output of one execution as the reader sees it: display lines built from the event log.
 * Events at or below the last seq applied are ignored, so a replay after a reconnect can overlap
 * without showing anything twice. A `partial` line is continued by the next line of its stream, the
 * way a terminal keeps the cursor after a prompt such as "Name: ".
 */
import type {
	ArtifactFieldsFragment,
	ExecutionEventsSubscription,
	ExecutionStatus,
	ExecutionSummaryFragment,
	SharedExecutionEventsSubscription
} from '$lib/gql/graphql';
import { isTerminal } from '$lib/statuses';
import { parseAnsi, plainStyle, stripAnsi, type Segment, type Style } from './ansi';

/** An event of a run followed by its owner, or by a viewer of its link (whose status events carry no execution). */
export type ExecutionEvent =
	| ExecutionEventsSubscription['executionEvents']
	| SharedExecutionEventsSubscription['sharedExecutionEvents'];
export type Stream = 'STDOUT' | 'STDERR';

export interface DisplayLine {
	stream: Stream;
	/** The raw text, escapes included. */
	text: string;
	segments: Segment[];
	/** Set on the line that shows an artifact, at the point of the output where it was produced. */
	artifact?: ArtifactFieldsFragment;
}

/** How many rows of output an image shown inline takes. */
export const IMAGE_ROWS = 16;

/** Images are shown in the output (an <img> never runs an SVG's scripts); other artifacts are download chips. */
export function isInlineImage(artifact: ArtifactFieldsFragment): boolean {
	return artifact.mediaType === 'image/png' || artifact.mediaType === 'image/svg+xml';
}

export function rowsOf(line: DisplayLine): number {
	return line.artifact && isInlineImage(line.artifact) ? IMAGE_ROWS : 1;
}

export class OutputBuffer {
	readonly lines: DisplayLine[] = [];
	/** The first row of each display line (an inline image takes several rows). */
	readonly tops: number[] = [];
	/** Rows taken by all display lines. */
	rows = 0;
	lastSeq = 0;
	status: ExecutionStatus | null = null;
	execution: ExecutionSummaryFragment | null = null;

	/**
	 * Per stream: the index of the display line a partial line left open, and the colour state carried
	 * over. Lines are replaced, never mutated, so a renderer can compare them by identity.
	 */
	#open: Record<Stream, number | null> = { STDOUT: null, STDERR: null };
	#openStyle: Record<Stream, Style> = { STDOUT: plainStyle(), STDERR: plainStyle() };
	#style: Record<Stream, Style> = { STDOUT: plainStyle(), STDERR: plainStyle() };

	/** Whether stdout ends in a line without its newline yet: a prompt such as "Name: " awaiting input. */
	get prompting(): boolean {
		return this.#open.STDOUT !== null;
	}

	get terminal(): boolean {
		return this.status !== null && isTerminal(this.status);
	}

	/** Apply one subscription event; returns whether anything changed. */
	apply(event: ExecutionEvent): boolean {
		if (event.__typename === 'StatusChange' || event.__typename === 'SharedStatusChange') {
			if (event.seq <= this.lastSeq) return false;
			this.lastSeq = event.seq;
			this.status = event.status;
			if (event.__typename === 'StatusChange') this.execution = event.execution;
			return true;
		}
		if (event.__typename === 'ArtifactCreated') {
			if (event.seq <= this.lastSeq) return false;
			this.lastSeq = event.seq;
			// What comes after the artifact starts a line of its own, below it.
			this.#open = { STDOUT: null, STDERR: null };
			const text = `[${event.artifact.name}]`;
			this.#push({ stream: 'STDOUT', text, segments: [{ text, classes: '', style: '' }], artifact: event.artifact });
			return true;
		}
		let changed = false;
		for (const line of event.lines) {
			if (line.seq <= this.lastSeq) continue;
			this.lastSeq = line.seq;
			this.#append(line.stream, line.text, line.partial);
			changed = true;
		}
		return changed;
	}

	/**
	 * Show what the reader typed, the way a terminal echoes it: after the prompt on the open stdout
	 * line, which it then ends. It is not part of the log, so it takes no seq.
	 */
	echo(text: string): void {
		const segment = { text, classes: 'input-echo', style: '' };
		const open = this.#open.STDOUT;
		const line = open === null ? undefined : this.lines[open];
		if (open !== null && line) {
			this.lines[open] = { stream: 'STDOUT', text: line.text + text, segments: [...line.segments, segment] };
			this.#open.STDOUT = null;
		} else {
			this.#push({ stream: 'STDOUT', text, segments: [segment] });
		}
	}

	/** All output as plain text, one line per display line. */
	text(): string {
		return this.lines.map((line) => stripAnsi(line.text)).join('\n') + (this.lines.length ? '\n' : '');
	}

	#push(line: DisplayLine): void {
		this.lines.push(line);
		this.tops.push(this.rows);
		this.rows += rowsOf(line);
	}

	#append(stream: Stream, text: string, partial: boolean): void {
		const open = this.#open[stream];
		const line = open === null ? undefined : this.lines[open];
		if (open !== null && line) {
			// Re-parse the whole joined line from the colour state it started with.
			const joined = line.text + text;
			const style = { ...this.#openStyle[stream] };
			this.lines[open] = { stream, text: joined, segments: parseAnsi(joined, style) };
			this.#style[stream] = style;
		} else {
			this.#openStyle[stream] = { ...this.#style[stream] };
			this.#push({ stream, text, segments: parseAnsi(text, this.#style[stream]) });
			this.#open[stream] = this.lines.length - 1;
		}
		if (!partial) this.#open[stream] = null;
	}
}
