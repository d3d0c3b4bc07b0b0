/** Human-readable figures for runs. */
import type { ExecutionStatus, LimitKind } from '$lib/gql/graphql';

export function duration(ms: number | null | undefined): string {
	if (ms === null || ms === undefined) return '—';
	if (ms < 1000) return `${ms} ms`;
	if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
	return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Time gone by as a clock shows it: 0:07, 12:30, 1:02:03. */
export function clock(ms: number): string {
	const total = Math.max(0, Math.floor(ms / 1000));
	const [hours, minutes, seconds] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
	const pad = (n: number) => String(n).padStart(2, '0');
	return hours ? `${hours}:${pad(minutes)}:${pad(seconds)}` : `${minutes}:${pad(seconds)}`;
}

export function memoryKiB(kib: number | null | undefined): string {
	if (kib === null || kib === undefined) return '—';
	if (kib < 1024) return `${kib} KiB`;
	return `${(kib / 1024).toFixed(1)} MiB`;
}

export function bytes(n: number): string {
	if (n < 1024) return `${n} B`;
	if (n < 1024 * 1024) return `${Math.round(n / 1024)} KiB`;
	return `${(n / (1024 * 1024)).toFixed(n % (1024 * 1024) ? 1 : 0)} MiB`;
}

export const STATUS_LABEL: Record<ExecutionStatus, string> = {
	QUEUED: 'Queued',
	STARTING: 'Starting',
	RUNNING: 'Running',
	SUCCEEDED: 'Succeeded',
	FAILED: 'Failed',
	TIMED_OUT: 'Timed out',
	CANCELLED: 'Cancelled',
	ERROR: 'Error'
};

export const LIMIT_LABEL: Record<LimitKind, string> = {
	WALL_TIME: 'wall-time limit',
	CPU_TIME: 'CPU-time limit',
	MEMORY: 'memory limit',
	OUTPUT: 'output limit',
	PROCESSES: 'process limit'
};

export function when(iso: string): string {
	const date = new Date(iso);
	return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

// The Linux numbers of the signals a run can die of, as `kill -l` names them.
const SIGNALS: Record<number, string> = {
	1: 'SIGHUP',
	2: 'SIGINT',
	3: 'SIGQUIT',
	4: 'SIGILL',
	5: 'SIGTRAP',
	6: 'SIGABRT',
	7: 'SIGBUS',
	8: 'SIGFPE',
	9: 'SIGKILL',
	10: 'SIGUSR1',
	11: 'SIGSEGV',
	12: 'SIGUSR2',
	13: 'SIGPIPE',
	14: 'SIGALRM',
	15: 'SIGTERM',
	24: 'SIGXCPU',
	25: 'SIGXFSZ',
	31: 'SIGSYS'
};

/** "SIGXCPU (24)": the signal's name where it has one, with its number. */
export function signalName(signal: number): string {
	const name = SIGNALS[signal];
	return name ? `${name} (${signal})` : `signal ${signal}`;
}

/**
 * The last 8 hex digits of a run id. Ids are UUIDv7: their first digits are the submission time,
 * the same for runs a minute apart, so the short form is taken from the random tail.
 */
export function shortId(id: string): string {
	return id.replaceAll('-', '').slice(-8);
}
