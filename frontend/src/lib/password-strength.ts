/**
 * How guessable a new password is, by the rule the server applies (zxcvbn; @zxcvbn-ts is its port).
 * Its dictionaries are large, so they load only when someone chooses a password.
 */
import type { ZxcvbnFactory } from '@zxcvbn-ts/core';

/** The server's default `auth.min_password_score` (0 to 4); the server has the last word. */
export const MIN_SCORE = 3;
/** What the server estimates from: zxcvbn judges at most this many characters. */
const ESTIMATED_CHARS = 72;

export const SCORE_LABEL = ['Very weak', 'Weak', 'Fair', 'Strong', 'Very strong'] as const;

let estimator: Promise<ZxcvbnFactory> | null = null;

function load(): Promise<ZxcvbnFactory> {
	estimator ??= Promise.all([import('@zxcvbn-ts/core'), import('@zxcvbn-ts/language-common'), import('@zxcvbn-ts/language-en')]).then(
		([{ ZxcvbnFactory }, common, english]) =>
			new ZxcvbnFactory({
				dictionary: { ...common.dictionary, ...english.dictionary },
				graphs: common.adjacencyGraphs,
				translations: english.translations
			})
	);
	return estimator;
}

export interface Strength {
	score: number;
	/** Why it is weak, or how to make it stronger ('' when there is nothing to say). */
	hint: string;
}

/** The password's score (0 to 4) and a hint; the email counts as words an attacker tries first. */
export async function strength(password: string, email: string): Promise<Strength> {
	const result = (await load()).check(password.slice(0, ESTIMATED_CHARS), [email, email.split('@')[0] ?? '']);
	return { score: result.score, hint: result.feedback.warning ?? result.feedback.suggestions[0] ?? '' };
}
