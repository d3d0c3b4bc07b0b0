import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ExecutionSummaryFragment } from '$lib/gql/graphql';
import { OutputBuffer, type ExecutionEvent } from './buffer';
import { Follower, type EventsSink, type SubscribeEvents } from './follow';

/** A fake transport: records each subscription and lets the test push events or drop it. */
class FakeServer {
	calls: { afterSeq: number; sink: EventsSink; closed: boolean }[] = [];
	subscribe: SubscribeEvents = (variables, sink) => {
		const call = { afterSeq: variables.afterSeq, sink, closed: false };
		this.calls.push(call);
		return () => (call.closed = true);
	};
	get last() {
		const call = this.calls.at(-1);
		if (!call) throw new Error('no subscription');
		return call;
	}
	send(...events: ExecutionEvent[]) {
		for (const event of events) this.last.sink.next({ data: { executionEvents: event } });
	}
}

const line = (seq: number, text = `line ${seq}`): ExecutionEvent => ({
	__typename: 'OutputChunk',
	lines: [{ seq, stream: 'STDOUT', text, partial: false }]
});
const status = (seq: number, value: ExecutionSummaryFragment['status']): ExecutionEvent => ({
	__typename: 'StatusChange',
	seq,
	status: value,
	execution: { id: 'run', status: value } as ExecutionSummaryFragment
});

describe('Follower', () => {
	let server: FakeServer;
	let buffer: OutputBuffer;
	let follower: Follower;
	const onChange = vi.fn();

	beforeEach(() => {
		vi.useFakeTimers();
		server = new FakeServer();
		buffer = new OutputBuffer();
		follower = new Follower(server.subscribe, 'run', buffer, { onChange, backoffMs: () => 1000 });
	});
	afterEach(() => {
		follower.stop();
		vi.useRealTimers();
	});

	it('resumes after a dropped connection from the last seq, with no gap and no duplicate', () => {
		follower.start();
		expect(server.last.afterSeq).toBe(0);
		server.last.sink.connected?.();
		expect(follower.state).toBe('live');
		server.send(status(1, 'RUNNING'), line(2), line(3));

		server.last.sink.error({ code: 1006, reason: 'network' });
		expect(follower.state).toBe('reconnecting');
		vi.advanceTimersByTime(999);
		expect(server.calls).toHaveLength(1);
		vi.advanceTimersByTime(1);
		expect(server.calls).toHaveLength(2);
		expect(server.last.afterSeq).toBe(3);

		// A server may replay a little more than asked for; nothing shows twice.
		server.send(line(3), line(4), status(5, 'SUCCEEDED'));
		server.last.sink.complete();
		expect(follower.state).toBe('done');
		expect(buffer.lines.map((l) => l.text)).toEqual(['line 2', 'line 3', 'line 4']);
		expect(follower.subscriptions).toBe(2);
	});

	it('resubscribes when the stream completes before the terminal status', () => {
		follower.start();
		server.send(status(1, 'RUNNING'), line(2));
		server.last.sink.complete();
		vi.advanceTimersByTime(1000);
		expect(server.last.afterSeq).toBe(2);
	});

	it('keeps retrying while the API is down, then catches up', () => {
		follower.start();
		server.send(line(1));
		for (let attempt = 0; attempt < 3; attempt++) {
			server.last.sink.error(new Error('connection refused'));
			vi.advanceTimersByTime(1000);
		}
		expect(server.calls.map((c) => c.afterSeq)).toEqual([0, 1, 1, 1]);
		server.send(line(2), status(3, 'FAILED'));
		expect(buffer.terminal).toBe(true);
	});

	it('gives up on errors that retrying cannot fix', () => {
		follower.start();
		server.last.sink.error([{ message: 'execution not found', extensions: { code: 'NOT_FOUND' } }]);
		expect(follower.state).toBe('failed');
		expect(follower.error?.code).toBe('NOT_FOUND');
		vi.advanceTimersByTime(10_000);
		expect(server.calls).toHaveLength(1);
	});

	it('unsubscribes and stops retrying when stopped', () => {
		follower.start();
		server.last.sink.error(new Error('drop'));
		follower.stop();
		vi.advanceTimersByTime(10_000);
		expect(server.calls).toHaveLength(1);
		follower = new Follower(server.subscribe, 'run', buffer, { onChange });
		follower.start();
		follower.stop();
		expect(server.last.closed).toBe(true);
	});
});
