/** The form builder's fields as edited (text boxes), and the ToolFieldInput each becomes when published. */
import type { ToolFieldInput, ToolFieldKind } from '$lib/gql/graphql';
import type { ToolField } from '$lib/tool-form';

export interface DraftField {
	/** Stable across edits and reordering, for keyed lists. */
	key: number;
	name: string;
	label: string;
	kind: ToolFieldKind;
	required: boolean;
	help: string;
	min: string;
	max: string;
	/** One choice per line. */
	choices: string;
	/** Extensions separated by commas or spaces: ".csv, .txt". */
	accept: string;
	maxBytes: string;
	default: string;
}

export const KINDS: { kind: ToolFieldKind; label: string }[] = [
	{ kind: 'TEXT', label: 'Text' },
	{ kind: 'MULTILINE_TEXT', label: 'Several lines of text' },
	{ kind: 'NUMBER', label: 'Number' },
	{ kind: 'CHOICE', label: 'Choice from a list' },
	{ kind: 'BOOLEAN', label: 'Yes / no' },
	{ kind: 'FILE', label: 'File' }
];

let nextKey = 1;

export function newField(index: number): DraftField {
	return {
		key: nextKey++,
		name: `field_${index + 1}`,
		label: '',
		kind: 'TEXT',
		required: false,
		help: '',
		min: '',
		max: '',
		choices: '',
		accept: '',
		maxBytes: '',
		default: ''
	};
}

/** A published field, to edit for the next version. */
export function draftOf(field: ToolField): DraftField {
	const text = (value: number | null | undefined): string => (value === null || value === undefined ? '' : String(value));
	return {
		...newField(0),
		name: field.name,
		label: field.label,
		kind: field.kind,
		required: field.required,
		help: field.help ?? '',
		min: text(field.min),
		max: text(field.max),
		choices: (field.choices ?? []).join('\n'),
		accept: (field.accept ?? []).join(', '),
		maxBytes: text(field.maxBytes),
		default: field.default === null || field.default === undefined ? '' : String(field.default)
	};
}

function number(text: string): number | null {
	return text.trim() === '' ? null : Number(text.trim());
}

function typedDefault(draft: DraftField): unknown {
	if (draft.kind === 'FILE' || draft.default.trim() === '') return null;
	if (draft.kind === 'NUMBER') return Number(draft.default.trim());
	if (draft.kind === 'BOOLEAN') return draft.default.trim().toLowerCase() === 'true';
	return draft.default;
}

/** What publishTool takes for this field: only the options of its kind (the server refuses the others). */
export function fieldInput(draft: DraftField): ToolFieldInput {
	return {
		name: draft.name.trim(),
		label: draft.label,
		kind: draft.kind,
		required: draft.required,
		help: draft.help.trim() || null,
		default: typedDefault(draft),
		min: draft.kind === 'NUMBER' ? number(draft.min) : null,
		max: draft.kind === 'NUMBER' ? number(draft.max) : null,
		choices: draft.kind === 'CHOICE' ? draft.choices.split('\n').map((c) => c.trim()).filter(Boolean) : null,
		accept: draft.kind === 'FILE' && draft.accept.trim() ? draft.accept.split(/[\s,]+/).filter(Boolean) : null,
		maxBytes: draft.kind === 'FILE' ? number(draft.maxBytes) : null
	};
}

/** The field as the form shows it, for the preview. */
export function previewField(draft: DraftField): ToolField {
	const input = fieldInput(draft);
	return {
		name: input.name,
		label: input.label || input.name,
		kind: input.kind,
		required: input.required ?? false,
		default: input.default,
		help: input.help ?? null,
		min: input.min ?? null,
		max: input.max ?? null,
		choices: input.choices ?? null,
		accept: input.accept ?? null,
		maxBytes: input.maxBytes ?? null
	};
}
