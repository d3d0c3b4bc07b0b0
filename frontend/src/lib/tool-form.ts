/**
 * A tool's form in the browser: what each input holds, the same checks the server makes (tools/form.py),
 * and the values and files runTool takes. The server checks again; these only answer sooner.
 */
import type { ToolFieldFieldsFragment, ToolFileInput } from '$lib/gql/graphql';
import type { InputFile } from '$lib/input-files';

export type ToolField = ToolFieldFieldsFragment;

/** What the inputs hold: text as typed (numbers too), a box's tick, a picked file. */
export interface FormState {
	text: Record<string, string>;
	ticked: Record<string, boolean>;
	files: Record<string, InputFile | null>;
}

const MAX_TEXT = 1000;
const MAX_MULTILINE_TEXT = 100_000;

function shown(value: number): string {
	return String(value);
}

/** The form as it opens: each field at its default. */
export function initialState(fields: readonly ToolField[]): FormState {
	const state: FormState = { text: {}, ticked: {}, files: {} };
	for (const field of fields) {
		if (field.kind === 'BOOLEAN') state.ticked[field.name] = field.default === true;
		else if (field.kind === 'FILE') state.files[field.name] = null;
		else state.text[field.name] = field.default === null || field.default === undefined ? '' : String(field.default);
	}
	return state;
}

/** What is wrong with one field's input (the server's words), or null. */
export function fieldError(field: ToolField, state: FormState): string | null {
	if (field.kind === 'BOOLEAN') return null;
	if (field.kind === 'FILE') {
		const file = state.files[field.name];
		if (!file) return field.required ? 'is required' : null;
		if (field.accept && !field.accept.some((ext) => file.name.toLowerCase().endsWith(ext))) {
			return `must be a file of type ${field.accept.join(', ')}`;
		}
		if (field.maxBytes !== null && field.maxBytes !== undefined && file.size > field.maxBytes) {
			return `the file must be at most ${field.maxBytes} bytes`;
		}
		return null;
	}
	const raw = state.text[field.name] ?? '';
	if (raw === '') return field.required && (field.default === null || field.default === undefined) ? 'is required' : null;
	if (field.kind === 'NUMBER') {
		const value = Number(raw.trim());
		if (raw.trim() === '' || !Number.isFinite(value)) return 'must be a number';
		if (field.min !== null && field.min !== undefined && value < field.min) return `must be at least ${shown(field.min)}`;
		if (field.max !== null && field.max !== undefined && value > field.max) return `must be at most ${shown(field.max)}`;
		return null;
	}
	if (field.kind === 'CHOICE') {
		return field.choices?.includes(raw) ? null : `must be one of ${(field.choices ?? []).join(', ')}`;
	}
	if (field.kind === 'TEXT' && /[\r\n]/.test(raw)) return 'must be a single line';
	const limit = field.kind === 'TEXT' ? MAX_TEXT : MAX_MULTILINE_TEXT;
	return raw.length > limit ? `must be at most ${limit} characters long` : null;
}

/** Every field's problem, by field name; empty when the form may be sent. */
export function formErrors(fields: readonly ToolField[], state: FormState): Record<string, string> {
	const errors: Record<string, string> = {};
	for (const field of fields) {
		const error = fieldError(field, state);
		if (error) errors[field.name] = error;
	}
	return errors;
}

/** runTool's values and files: a NUMBER a number, a BOOLEAN true or false, an empty box left out. */
export function runInput(fields: readonly ToolField[], state: FormState): { values: Record<string, unknown>; files: ToolFileInput[] } {
	const values: Record<string, unknown> = {};
	const files: ToolFileInput[] = [];
	for (const field of fields) {
		if (field.kind === 'BOOLEAN') values[field.name] = state.ticked[field.name] ?? false;
		else if (field.kind === 'FILE') {
			const file = state.files[field.name];
			if (file) files.push({ field: field.name, name: file.name, content: file.content });
		} else {
			const raw = state.text[field.name] ?? '';
			if (raw !== '') values[field.name] = field.kind === 'NUMBER' ? Number(raw.trim()) : raw;
		}
	}
	return { values, files };
}
