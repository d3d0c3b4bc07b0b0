/**
 * The admin's system settings form: limits in the units people think in (seconds, MiB, KiB) and the
 * API's BAD_USER_INPUT messages, which start with the path of the value at fault
 * (`roles.USER.maxLimits.wallTimeMs must be between 1 and 60000`), turned into a sentence shown
 * beside that field, in the field's unit.
 */
import { LIMIT_FIELDS, type LimitKey } from './limits';

/** A limit as shown: the API's value in the field's unit (seconds for milliseconds, KiB for bytes). */
export function shownLimit(key: LimitKey, value: number): number {
	const field = LIMIT_FIELDS.find((f) => f.key === key)!;
	return Math.round((value / field.scale) * 1000) / 1000;
}

/** A limit as the API takes it, from what the field shows. */
export function sentLimit(key: LimitKey, shown: number): number {
	const field = LIMIT_FIELDS.find((f) => f.key === key)!;
	return Math.round(shown * field.scale);
}

/** The key a field's error is filed under: its path, any case (the server spells `storageMiB` `storageMib`). */
export const fieldKey = (path: string): string => path.toLowerCase();

export interface FieldError {
	/** fieldKey() of the value at fault, or '' when the message names none. */
	field: string;
	/** What is wrong, without the path, with limits in the field's unit. */
	text: string;
}

const LEADING_PATH = /^((?:roles\.[A-Z_]+)(?:\.[A-Za-z]+){0,2}|queuedExecutionsCap|registrationOpen):?\s+(.*)$/;
const DEFAULT_ABOVE_MAXIMUM = /^default (\w+) must not exceed the maximum$/;

/** Where a BAD_USER_INPUT from updateSystemSettings belongs, and what to say there. */
export function policyError(message: string): FieldError {
	const match = LEADING_PATH.exec(message);
	if (!match) return { field: '', text: capitalise(message) };
	let [, path, text] = match as unknown as [string, string, string];
	// A role's own check names the limit in its text: it belongs beside that default.
	const above = DEFAULT_ABOVE_MAXIMUM.exec(text);
	if (above && /^roles\.[A-Z_]+$/.test(path)) {
		path = `${path}.defaultLimits.${above[1]}`;
		text = 'must not exceed the maximum';
	}
	const key = LIMIT_FIELDS.find((f) => path.endsWith(`Limits.${f.key}`))?.key;
	if (key) text = inUnits(key, text);
	return { field: fieldKey(path), text: capitalise(text) };
}

/** The numbers of a limit's message in the field's unit ("between 1 and 60000" → "between 0.001 s and 60 s"). */
function inUnits(key: LimitKey, text: string): string {
	const field = LIMIT_FIELDS.find((f) => f.key === key)!;
	if (field.scale === 1 && !field.unit) return text;
	return text.replace(/\b\d+\b/g, (number) => `${shownLimit(key, Number(number))} ${field.unit}`);
}

function capitalise(text: string): string {
	return text.charAt(0).toUpperCase() + text.slice(1) + (text.endsWith('.') ? '' : '.');
}
