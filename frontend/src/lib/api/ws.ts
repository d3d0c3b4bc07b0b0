/**
 * The one graphql-ws (graphql-transport-ws) client. It connects lazily, pings every 10 s and drops a
 * socket whose pong does not come back within 5 s. It does not resubscribe on its own: a dropped
 * socket ends each subscription with an error and the Follower (output/follow.ts) subscribes again
 * from the last seq it holds, which a blind replay of the original request could not do.
 */
import { createClient, type Client, type Sink } from 'graphql-ws';
import { print, type FormattedExecutionResult } from 'graphql';
import {
	ExecutionEventsDocument,
	SharedExecutionEventsDocument,
	type ExecutionEventsSubscription,
	type SharedExecutionEventsSubscription
} from '$lib/gql/graphql';
import { session } from './session.svelte';
import type { SubscribeEvents } from '$lib/output/follow';

const PING_MS = 10_000;
const PONG_TIMEOUT_MS = 5_000;
const EVENTS_QUERY = print(ExecutionEventsDocument);
const SHARED_EVENTS_QUERY = print(SharedExecutionEventsDocument);

let client: Client | null = null;
let isConnected = false;
const waiting = new Set<() => void>();

function socketUrl(): string {
	const { protocol, host } = window.location;
	return `${protocol === 'https:' ? 'wss:' : 'ws:'}//${host}/graphql`;
}

function create(): Client {
	let socket: WebSocket | null = null;
	let pongTimer: ReturnType<typeof setTimeout> | undefined;
	return createClient({
		url: socketUrl(),
		lazy: true,
		lazyCloseTimeout: 2_000,
		keepAlive: PING_MS,
		retryAttempts: 0,
		connectionParams: async () => {
			const token = await session.accessToken();
			return token ? { authorization: `Bearer ${token}` } : {};
		},
		on: {
			connected: (s) => {
				socket = s as WebSocket;
				isConnected = true;
				for (const notify of waiting) notify();
				waiting.clear();
			},
			ping: (received) => {
				if (received) return;
				pongTimer = setTimeout(() => {
					if (socket?.readyState === WebSocket.OPEN) socket.close(4408, 'Pong timeout');
				}, PONG_TIMEOUT_MS);
			},
			pong: (received) => {
				if (received) clearTimeout(pongTimer);
			},
			closed: (event) => {
				clearTimeout(pongTimer);
				socket = null;
				isConnected = false;
				// 4403: the server refused our token; get a new one before the next attempt.
				if ((event as CloseEvent | undefined)?.code === 4403) void session.refresh().catch(() => {});
			}
		}
	});
}

/** Sign-in and sign-out change who the socket is: start a new one. */
session.onChange(() => {
	void client?.dispose();
	client = null;
	isConnected = false;
});

/** Subscribe on the one socket, telling the sink once it is connected; the unsubscribe function. */
function open<Data>(
	query: string,
	variables: Record<string, unknown>,
	sink: Sink<FormattedExecutionResult<Data>> & { connected?: () => void }
): () => void {
	client ??= create();
	const dispose = client.subscribe<Data>({ query, variables }, sink);
	const connected = () => sink.connected?.();
	// Already connected: the subscribe message goes out on the open socket at once.
	if (isConnected) queueMicrotask(connected);
	else waiting.add(connected);
	return () => {
		waiting.delete(connected);
		dispose();
	};
}

/** executionEvents(id, afterSeq) over the shared socket. */
export const subscribeEvents: SubscribeEvents = (variables, sink) =>
	open(EVENTS_QUERY, variables, sink as Sink<FormattedExecutionResult<ExecutionEventsSubscription>>);

/**
 * sharedExecutionEvents(token, afterSeq) for a viewer of a run's link (no sign-in needed), its events
 * handed on as executionEvents ones so that the same Follower and OutputBuffer show them.
 */
export function subscribeSharedEvents(token: string): SubscribeEvents {
	return ({ afterSeq }, sink) =>
		open<SharedExecutionEventsSubscription>(
			SHARED_EVENTS_QUERY,
			{ token, afterSeq },
			{
				next: ({ data, errors }) =>
					sink.next({ data: data ? { executionEvents: data.sharedExecutionEvents } : data, errors }),
				error: (error) => sink.error(error),
				complete: () => sink.complete(),
				connected: () => sink.connected?.()
			}
		);
}
