/**
 * One execution followed into an OutputBuffer, as reactive state rendered at most once per frame:
 * the run panel's and each notebook cell's view of the same Follower and executionEvents socket.
 */
import { describeError } from '$lib/api/errors';
import { subscribeEvents } from '$lib/api/ws';
import type { ExecutionSummaryFragment } from '$lib/gql/graphql';
import { OutputBuffer } from './buffer';
import { Follower, type FollowState } from './follow';

export class FollowedExecution {
	buffer = $state.raw(new OutputBuffer());
	/** Bumped whenever the buffer changed (it is mutated in place for speed). */
	version = $state(0);
	state = $state<FollowState>('connecting');
	error = $state<string | null>(null);
	/** The execution as its last status event carried it. */
	execution = $state.raw<ExecutionSummaryFragment | null>(null);

	/**
	 * Follow `id` from its first event (call it in an $effect; it returns the cleanup). `onexecution`
	 * hears each new snapshot of the execution, with whether the run has ended.
	 */
	start(id: string, onexecution?: (execution: ExecutionSummaryFragment, ended: boolean) => void): () => void {
		const output = new OutputBuffer();
		this.buffer = output;
		this.execution = null;
		this.error = null;
		let frame = 0;
		const follower = new Follower(subscribeEvents, id, output, {
			onChange: () => {
				// Many events can arrive per frame; render once per frame.
				if (frame) return;
				frame = requestAnimationFrame(() => {
					frame = 0;
					this.version += 1;
					this.state = follower.state;
					this.error = follower.error ? describeError(follower.error) : null;
					if (output.execution && output.execution !== this.execution) {
						this.execution = output.execution;
						onexecution?.(output.execution, output.terminal);
					}
				});
			}
		}).start();
		return () => {
			cancelAnimationFrame(frame);
			follower.stop();
		};
	}
}
