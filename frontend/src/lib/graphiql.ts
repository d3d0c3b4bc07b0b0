/**
 * GraphiQL from this site's own bundle (React and GraphiQL built by Vite, nothing from a CDN), signed
 * in as the page is: every request and the WebSocket carry the session's access token.
 */
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { createClient } from 'graphql-ws';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import 'graphiql/style.css';
import { session } from '$lib/api/session.svelte';

async function authorised(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
	const token = await session.accessToken();
	const headers = new Headers(init?.headers);
	if (token) headers.set('authorization', `Bearer ${token}`);
	return fetch(input, { ...init, headers });
}

/** Render GraphiQL into `host`; the returned function takes it down again. */
export function mountGraphiQL(host: HTMLElement, dark: boolean): () => void {
	const { protocol, host: site } = window.location;
	const wsClient = createClient({
		url: `${protocol === 'https:' ? 'wss:' : 'ws:'}//${site}/graphql`,
		lazy: true,
		connectionParams: async () => {
			const token = await session.accessToken();
			return token ? { authorization: `Bearer ${token}` } : {};
		}
	});
	const fetcher = createGraphiQLFetcher({ url: '/graphql', fetch: authorised, wsClient });
	const root = createRoot(host);
	root.render(
		createElement(GraphiQL, {
			fetcher,
			forcedTheme: dark ? 'dark' : 'light',
			defaultQuery: '# Signed in as you: try\n{\n  me {\n    email\n    role\n  }\n}\n'
		})
	);
	return () => {
		root.unmount();
		void wsClient.dispose();
	};
}
