/**
 * The signed-in user. The access token lives only in this module's memory; the refresh token is an
 * httpOnly cookie the page cannot read (see backend accounts/web_session.py). Every /auth call sends
 * the CSRF header the server requires.
 */
import { ApiError, toApiError } from './errors';

export interface SessionUser {
	id: string;
	email: string;
	role: 'USER' | 'CONTRIBUTOR' | 'ADMIN';
}

interface SessionAnswer {
	accessToken: string;
	expiresInMs: number;
	user: SessionUser;
}

/** Refresh this long before the access token expires, so requests never race its expiry. */
const REFRESH_MARGIN_MS = 60_000;

class Session {
	user = $state<SessionUser | null>(null);
	/** Set when a session that was running ended (refresh refused): sign-in says so. */
	expired = $state(false);
	/** False until the first refresh attempt at start-up has answered. */
	ready = $state(false);

	#accessToken: string | null = null;
	#expiresAt = 0;
	#refreshing: Promise<string | null> | null = null;
	#listeners = new Set<() => void>();

	/** Sign in with email and password; sets the refresh cookie. */
	async signIn(email: string, password: string): Promise<void> {
		this.#accept(await authCall('POST', '/auth/session', { email, password }));
	}

	/** Forget the session here and on the server. */
	async signOut(): Promise<void> {
		try {
			await authCall('DELETE', '/auth/session');
		} finally {
			this.#clear();
			this.expired = false;
		}
	}

	/** Try to resume a session from the refresh cookie (at start-up). */
	async restore(): Promise<void> {
		try {
			await this.accessToken();
		} finally {
			this.ready = true;
		}
	}

	/** A valid access token, refreshed through the cookie when needed; null when signed out. */
	async accessToken(): Promise<string | null> {
		if (this.#accessToken && Date.now() < this.#expiresAt - REFRESH_MARGIN_MS) return this.#accessToken;
		return this.refresh();
	}

	/** Trade the cookie for a new access token (one request at a time, shared by all callers). */
	refresh(): Promise<string | null> {
		this.#refreshing ??= (async () => {
			const hadSession = this.user !== null;
			try {
				this.#accept(await acrossTabs(() => authCall('POST', '/auth/refresh')));
				return this.#accessToken;
			} catch (error) {
				if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') {
					this.#clear();
					if (hadSession) this.expire();
					return null;
				}
				throw error;
			} finally {
				this.#refreshing = null;
			}
		})();
		return this.#refreshing;
	}

	/** The server refused our credentials mid-session: back to sign-in (the editor keeps its draft). */
	expire(): void {
		this.#clear();
		this.expired = true;
	}

	/** Called whenever the user changes (the WebSocket client reconnects with the new identity). */
	onChange(listener: () => void): () => void {
		this.#listeners.add(listener);
		return () => this.#listeners.delete(listener);
	}

	#accept(answer: SessionAnswer): void {
		const changed = this.user?.id !== answer.user.id;
		this.#accessToken = answer.accessToken;
		this.#expiresAt = Date.now() + answer.expiresInMs;
		this.user = answer.user;
		this.expired = false;
		if (changed) this.#notify();
	}

	#clear(): void {
		const changed = this.user !== null || this.#accessToken !== null;
		this.#accessToken = null;
		this.#expiresAt = 0;
		this.user = null;
		if (changed) this.#notify();
	}

	#notify(): void {
		for (const listener of this.#listeners) listener();
	}
}

/**
 * Run `call` while no other tab of this site runs one: a refresh token works once, and every tab shares
 * the cookie, so two refreshes at the same instant would look like a stolen token and end the sign-in.
 * One after the other, the second sends the cookie the first received. (No Web Locks outside a secure
 * context: then only this tab's refreshes are one at a time.)
 */
function acrossTabs<T>(call: () => Promise<T>): Promise<T> {
	if (typeof navigator === 'undefined' || !navigator.locks) return call();
	return navigator.locks.request('podrun-refresh', call);
}

async function authCall(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<SessionAnswer> {
	let response: Response;
	try {
		response = await fetch(path, {
			method,
			credentials: 'same-origin',
			headers: { 'content-type': 'application/json', 'x-podrun-csrf': '1' },
			body: body === undefined ? undefined : JSON.stringify(body)
		});
	} catch {
		throw new ApiError('NETWORK', 'network unreachable');
	}
	const json: unknown = await response.json().catch(() => ({}));
	if (!response.ok) {
		if (response.status === 400 && !(json as { code?: unknown }).code) {
			throw new ApiError('BAD_USER_INPUT', 'email and password are required');
		}
		throw toApiError(json);
	}
	return json as SessionAnswer;
}

export const session = new Session();
