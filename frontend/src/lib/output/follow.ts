/**
 * Following an execution's events live, surviving dropped connections: every (re)subscription asks
 * for the events after the last seq the buffer holds, so nothing is lost, and the buffer ignores
 * anything it already has, so nothing shows twice.
 */
import { ApiError, toApiError } from '$lib/api/errors';
import type { ExecutionEvent, OutputBuffer } from './buffer';

export interface EventsSink {
	next(value: { data?: { executionEvents: ExecutionEvent } | null; errors?: readonly unknown[] }): void;
	error(error: unknown): void;
	complete(): void;
	/** The transport is connected (it may say so before any event arrives). */
	connected?(): void;
}

export type SubscribeEvents = (variables: { id: string; afterSeq: number }, sink: EventsSink) => () => void;

export type FollowState = 'connecting' | 'live' | 'reconnecting' | 'done' | 'failed';

export interface FollowOptions {
	/** Called after events changed the buffer or the state changed. */
	onChange: () => void;
	/** Delay before the n-th retry in a row (n from 1). */
	backoffMs?: (attempt: number) => number;
}

const FATAL = new Set(['NOT_FOUND', 'FORBIDDEN', 'BAD_USER_INPUT']);

export const defaultBackoff = (attempt: number): number => Math.min(5_000, 250 * 2 ** (attempt - 1));

export class Follower {
	state: FollowState = 'connecting';
	error: ApiError | null = null;
	/** How many times the subscription was started (1 + reconnects). */
	subscriptions = 0;

	#unsubscribe: (() => void) | null = null;
	#timer: ReturnType<typeof setTimeout> | null = null;
	#attempt = 0;
	#stopped = false;
	readonly #subscribe: SubscribeEvents;
	readonly #id: string;
	readonly #buffer: OutputBuffer;
	readonly #onChange: () => void;
	readonly #backoff: (attempt: number) => number;

	constructor(subscribe: SubscribeEvents, id: string, buffer: OutputBuffer, options: FollowOptions) {
		this.#subscribe = subscribe;
		this.#id = id;
		this.#buffer = buffer;
		this.#onChange = options.onChange;
		this.#backoff = options.backoffMs ?? defaultBackoff;
	}

	start(): this {
		this.#connect();
		return this;
	}

	stop(): void {
		this.#stopped = true;
		if (this.#timer) clearTimeout(this.#timer);
		this.#unsubscribe?.();
		this.#unsubscribe = null;
	}

	#connect(): void {
		if (this.#stopped) return;
		this.subscriptions += 1;
		let ended = false;
		const end = (retry: boolean, error?: unknown) => {
			if (ended) return;
			ended = true;
			this.#unsubscribe = null;
			if (this.#buffer.terminal) this.#setState('done');
			else if (!retry) {
				this.error = toApiError(Array.isArray(error) ? error[0] : error);
				this.#setState('failed');
			} else this.#retry();
		};
		this.#unsubscribe = this.#subscribe(
			{ id: this.#id, afterSeq: this.#buffer.lastSeq },
			{
				next: (result) => {
					if (ended || this.#stopped) return;
					const graphqlError = result.errors?.[0];
					if (graphqlError) return end(!isFatal(graphqlError), graphqlError);
					const event = result.data?.executionEvents;
					this.#attempt = 0;
					const changed = event ? this.#buffer.apply(event) : false;
					if (this.state !== 'live' || changed) {
						this.state = 'live';
						this.#onChange();
					}
				},
				error: (error) => {
					if (!this.#stopped) end(!isFatal(error), error);
				},
				complete: () => {
					if (!this.#stopped) end(true);
				},
				connected: () => {
					if (ended || this.#stopped || this.state === 'live') return;
					this.#attempt = 0;
					this.#setState('live');
				}
			}
		);
	}

	#retry(): void {
		this.#attempt += 1;
		this.#setState('reconnecting');
		this.#timer = setTimeout(() => {
			this.#timer = null;
			this.#connect();
		}, this.#backoff(this.#attempt));
	}

	#setState(state: FollowState): void {
		this.state = state;
		this.#onChange();
	}
}

function isFatal(error: unknown): boolean {
	const first = Array.isArray(error) ? error[0] : error;
	if (first && typeof first === 'object' && ('extensions' in first || 'message' in first)) {
		return FATAL.has(toApiError(first).code);
	}
	return false;
}
