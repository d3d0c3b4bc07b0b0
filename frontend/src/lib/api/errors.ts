/** Errors from the API, with the `extensions.code` the server reports, turned into messages people can act on. */

export type ErrorCode =
	| 'UNAUTHENTICATED'
	| 'FORBIDDEN'
	| 'NOT_FOUND'
	| 'BAD_USER_INPUT'
	| 'RATE_LIMITED'
	| 'CONFLICT'
	| 'UNAVAILABLE'
	| 'INTERNAL'
	| 'NETWORK';

export class ApiError extends Error {
	readonly code: ErrorCode;
	readonly retryAfterMs: number | undefined;
	/** The form field a BAD_USER_INPUT is about (a tool's form), if the server named one. */
	readonly field: string | undefined;

	constructor(code: ErrorCode, message: string, retryAfterMs?: number, field?: string) {
		super(message);
		this.name = 'ApiError';
		this.code = code;
		this.retryAfterMs = retryAfterMs;
		this.field = field;
	}
}

const KNOWN: ReadonlySet<string> = new Set([
	'UNAUTHENTICATED',
	'FORBIDDEN',
	'NOT_FOUND',
	'BAD_USER_INPUT',
	'RATE_LIMITED',
	'CONFLICT',
	'UNAVAILABLE',
	'INTERNAL'
]);

interface FormattedError {
	message?: unknown;
	extensions?: { code?: unknown; retryAfterMs?: unknown; field?: unknown } | null;
	code?: unknown;
	retryAfterMs?: unknown;
}

/** An ApiError from a GraphQL error (or the JSON body of an /auth answer). */
export function toApiError(raw: unknown): ApiError {
	if (raw instanceof ApiError) return raw;
	const error = (raw ?? {}) as FormattedError;
	const code = error.extensions?.code ?? error.code;
	const retry = error.extensions?.retryAfterMs ?? error.retryAfterMs;
	const message = typeof error.message === 'string' ? error.message : 'Something went wrong.';
	const field = error.extensions?.field;
	return new ApiError(
		typeof code === 'string' && KNOWN.has(code) ? (code as ErrorCode) : 'INTERNAL',
		message,
		typeof retry === 'number' ? retry : undefined,
		typeof field === 'string' ? field : undefined
	);
}

function seconds(ms: number): string {
	const s = Math.max(1, Math.ceil(ms / 1000));
	return s === 1 ? '1 second' : `${s} seconds`;
}

/** A clear sentence for any error the client can meet. */
export function describeError(error: unknown): string {
	if (!(error instanceof ApiError)) {
		return error instanceof Error && error.name === 'TypeError'
			? 'Cannot reach Podrun. Check your connection and try again.'
			: 'Something went wrong. Please try again.';
	}
	switch (error.code) {
		case 'UNAUTHENTICATED':
			return error.message === 'wrong email or password'
				? 'Wrong email or password.'
				: 'Your session has ended. Please sign in again.';
		case 'FORBIDDEN':
			return 'You are not allowed to do that.';
		case 'NOT_FOUND':
			return 'Not found: it does not exist, or it is not yours.';
		case 'BAD_USER_INPUT':
			return `Please check your input: ${error.message}.`;
		case 'RATE_LIMITED':
			return error.retryAfterMs !== undefined
				? `Too many requests. Try again in ${seconds(error.retryAfterMs)}.`
				: 'Too many requests. Try again shortly.';
		case 'CONFLICT':
			return `${capitalise(error.message)}.`;
		case 'UNAVAILABLE':
			return error.retryAfterMs !== undefined
				? `Podrun is briefly unavailable. Try again in ${seconds(error.retryAfterMs)}.`
				: 'Podrun is briefly unavailable. Try again shortly.';
		case 'NETWORK':
			return 'Cannot reach Podrun. Check your connection and try again.';
		default:
			return 'Podrun hit an internal error. Please try again.';
	}
}

function capitalise(text: string): string {
	return text.charAt(0).toUpperCase() + text.slice(1);
}
