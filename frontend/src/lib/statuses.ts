/**
 * Which statuses mean a run is still going: the web client's one definition. A Record over the
 * generated ExecutionStatus, so a status the schema adds must be placed here before it compiles.
 */
import type { ExecutionStatus } from '$lib/gql/graphql';

const ACTIVE: Record<ExecutionStatus, boolean> = {
	QUEUED: true,
	STARTING: true,
	RUNNING: true,
	SUCCEEDED: false,
	FAILED: false,
	TIMED_OUT: false,
	CANCELLED: false,
	ERROR: false
};

/** QUEUED, STARTING or RUNNING: the run has not ended. */
export function isActive(status: ExecutionStatus): boolean {
	return ACTIVE[status];
}

/** The run has ended, one way or another. */
export function isTerminal(status: ExecutionStatus): boolean {
	return !ACTIVE[status];
}
