import { describe, expect, it } from 'vitest';
import { ApiError, describeError, toApiError } from './errors';

describe('errors', () => {
	it.each([
		[{ message: 'sign in first', extensions: { code: 'UNAUTHENTICATED' } }, 'Your session has ended. Please sign in again.'],
		[{ message: 'wrong email or password', extensions: { code: 'UNAUTHENTICATED' } }, 'Wrong email or password.'],
		[{ message: 'nope', extensions: { code: 'FORBIDDEN' } }, 'You are not allowed to do that.'],
		[{ message: 'x', extensions: { code: 'NOT_FOUND' } }, 'Not found: it does not exist, or it is not yours.'],
		[
			{ message: 'wallTimeMs must be at most 60000', extensions: { code: 'BAD_USER_INPUT' } },
			'Please check your input: wallTimeMs must be at most 60000.'
		],
		[
			{ message: 'too many', extensions: { code: 'RATE_LIMITED', retryAfterMs: 12_300 } },
			'Too many requests. Try again in 13 seconds.'
		],
		[{ message: 'too many', extensions: { code: 'RATE_LIMITED', retryAfterMs: 200 } }, 'Too many requests. Try again in 1 second.'],
		[
			{ message: 'an account with this email already exists', extensions: { code: 'CONFLICT' } },
			'An account with this email already exists.'
		],
		[
			{ message: 'the database is unavailable', extensions: { code: 'UNAVAILABLE', retryAfterMs: 1000 } },
			'Podrun is briefly unavailable. Try again in 1 second.'
		],
		[{ message: 'Unexpected error.', extensions: { code: 'INTERNAL' } }, 'Podrun hit an internal error. Please try again.'],
		[{ message: 'weird', extensions: { code: 'SOMETHING_NEW' } }, 'Podrun hit an internal error. Please try again.']
	])('describes %j', (raw, message) => {
		expect(describeError(toApiError(raw))).toBe(message);
	});

	it('reads the flat body of an /auth answer', () => {
		const error = toApiError({ code: 'RATE_LIMITED', message: 'x', retryAfterMs: 5000 });
		expect(error).toBeInstanceOf(ApiError);
		expect([error.code, error.retryAfterMs]).toEqual(['RATE_LIMITED', 5000]);
	});

	it('explains network failures', () => {
		expect(describeError(new ApiError('NETWORK', 'x'))).toMatch(/Cannot reach Podrun/);
		expect(describeError(new TypeError('Failed to fetch'))).toMatch(/Cannot reach Podrun/);
	});
});
