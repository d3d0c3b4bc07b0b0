/** A notebook's rules that need no browser: kernel states, the idle countdown, and the list of cells. */
import type { ExecutionStatus, ExecutionSummaryFragment, KernelStatus } from '$lib/gql/graphql';
import { clock } from '$lib/format';

export const KERNEL_STATUS_LABEL: Record<KernelStatus, string> = {
	STARTING: 'Starting',
	IDLE: 'Idle',
	BUSY: 'Busy',
	STOPPED: 'Stopped',
	DEAD: 'Dead'
};

/** STOPPED or DEAD: it runs no more cells, and polling it tells nothing new. */
export function kernelEnded(status: KernelStatus): boolean {
	return status === 'STOPPED' || status === 'DEAD';
}

/**
 * What the idle timeout's clock says: "4:59" left, "0:00" once it is due (the server stops it at its
 * next look), or null when no stop is planned (busy, or already ended).
 */
export function countdown(stopsAt: string | null | undefined, now: number): string | null {
	if (!stopsAt) return null;
	const due = Date.parse(stopsAt);
	if (Number.isNaN(due)) return null;
	// Round up: "0:01" until the last second has really gone, as a kitchen timer shows it.
	return clock(Math.ceil(Math.max(0, due - now) / 1000) * 1000);
}

/** What the header says of a kernel that has ended, with the server's reason made a sentence. */
export function endedMessage(status: 'STOPPED' | 'DEAD', error: string | null | undefined): string {
	const parts = [status === 'DEAD' ? 'This kernel has died.' : 'This kernel has stopped.'];
	const why = error?.trim();
	if (why) parts.push(why[0]!.toUpperCase() + why.slice(1) + (/[.!?]$/.test(why) ? '' : '.'));
	parts.push('Its cells stay here but can no longer run; start a new kernel to go on.');
	return parts.join(' ');
}

/** The line under a cell's status badge: a queued cell waits for the one before it, not for a sandbox. */
export function cellStatusHint(status: ExecutionStatus): string | null {
	switch (status) {
		case 'QUEUED':
			return 'Waiting for the cell before it';
		case 'CANCELLED':
			return 'Interrupted; the kernel kept its state';
		case 'TIMED_OUT':
			return 'Stopped at the time limit of a cell';
		default:
			return null;
	}
}

export interface Cell {
	/** Stable across edits and runs, for the keyed list. */
	key: string;
	code: string;
	/** Its latest run (an Execution of the kernel), or null before it first ran. */
	run: ExecutionSummaryFragment | null;
}

let made = 0;

export function newCell(code = '', run: ExecutionSummaryFragment | null = null): Cell {
	made += 1;
	return { key: run?.id ?? `new-${made}`, code, run };
}

/** The notebook of a kernel's cells as the server keeps them (oldest first), and an empty cell to type in. */
export function cellsFrom(runs: readonly ExecutionSummaryFragment[], open: boolean): Cell[] {
	const cells = runs.map((run) => newCell(run.script, run));
	if (open) cells.push(newCell());
	return cells;
}

/**
 * After Shift+Enter on cell `index`: the index to move to, adding an empty cell at the end when the
 * last cell ran (Jupyter's way). Returns the list to show (the same one when nothing was added).
 */
export function advance(cells: readonly Cell[], index: number): { cells: Cell[]; focus: number } {
	if (index < cells.length - 1) return { cells: [...cells], focus: index + 1 };
	return { cells: [...cells, newCell()], focus: cells.length };
}
